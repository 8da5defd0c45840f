/**
 * Benchmark child process: a small HTTP/1.1 server on 127.0.0.1 (keep-alive, a 13-byte response), the service
 * behind the gateway and proxy benchmark. Prints `{"port": N}` when listening; exits on SIGTERM or stdin close.
 */
import { createServer } from 'node:http'

const BODY = Buffer.from('hello warren\n')
const server = createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length })
  res.end(BODY)
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
