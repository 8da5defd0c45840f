/**
 * Run inside the lab namespace by the transparent-mode tests: an echo server, a hash-after-FIN server and a small
 * HTTP server on 127.0.0.1, ports printed as one JSON line on stdout; exits when stdin closes.
 */
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { echoServer, hashServer } from '../support/servers.ts'

const echo = await echoServer()
const hash = await hashServer()
const http = createHttpServer((req, res) => {
  res.setHeader('content-type', 'text/plain')
  res.end(`hello from a: ${req.method} ${req.url}\n`)
})
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
process.stdout.write(
  `${JSON.stringify({ echo: echo.port, hash: hash.port, http: (http.address() as AddressInfo).port })}\n`,
)
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
