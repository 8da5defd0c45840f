/**
 * Benchmark child process: a TCP xfer server (see xfer.ts) and a TCP echo server on 127.0.0.1.
 * Prints `{"xfer": port, "echo": port}` on stdout when listening; exits when stdin closes or on SIGTERM.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { CHUNK, decodeRequest, encodeCount, HEADER_BYTES, PAYLOAD } from './xfer.ts'

function serveXfer(s: Socket): void {
  let header: Buffer = Buffer.alloc(0)
  let mode: 'U' | 'D' | undefined
  let want = 0
  let got = 0
  const onData = (d: Buffer): void => {
    if (mode === undefined) {
      header = Buffer.concat([header, d])
      if (header.length < HEADER_BYTES) return
      const req = decodeRequest(header)
      mode = req.mode
      want = req.length
      d = header.subarray(HEADER_BYTES)
      if (mode === 'D') {
        s.off('data', onData)
        void sendAll(s, want)
        return
      }
    }
    got += d.length
    if (got >= want) {
      s.off('data', onData)
      s.end(encodeCount(got))
    }
  }
  s.on('data', onData)
  s.on('error', () => s.destroy())
}

async function sendAll(s: Socket, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes && !s.destroyed; ) {
    const n = Math.min(CHUNK, bytes - sent)
    const ok = s.write(n === CHUNK ? PAYLOAD : PAYLOAD.subarray(0, n))
    sent += n
    if (!ok) await new Promise<void>((resolve) => s.once('drain', resolve))
  }
  s.end()
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
}

const xfer = createServer({ noDelay: true, allowHalfOpen: true }, serveXfer)
const echo = createServer({ noDelay: true }, (s) => {
  s.pipe(s)
  s.on('error', () => s.destroy())
})
const ports = { xfer: await listen(xfer), echo: await listen(echo) }
process.stdout.write(`${JSON.stringify(ports)}\n`)

const stop = (): void => {
  xfer.close()
  echo.close()
  process.exit(0)
}
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
