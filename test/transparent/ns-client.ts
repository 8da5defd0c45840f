/**
 * Run inside the lab namespace: connects to `host:port` by name (the system resolver, so Warren's DNS server),
 * sends `bytes` deterministic bytes, half-closes, reads until the far side's FIN, and prints one JSON line with the
 * sha256 of what was sent and of what came back, or the error code of the connection.
 *
 *   node ns-client.ts <host> <port> <bytes> [4|6]
 */
import { createHash } from 'node:crypto'
import { connect } from 'node:net'

const [host = '', portText = '', bytesText = '0', familyText = '0'] = process.argv.slice(2)
const total = Number(bytesText)
const sent = createHash('sha256')
const got = createHash('sha256')
let received = 0
const head: Buffer[] = []
const started = performance.now()
const socket = connect({ host, port: Number(portText), family: Number(familyText), allowHalfOpen: true })
let remote: string | undefined
socket.on('connect', () => {
  remote = socket.remoteAddress
  const chunk = Buffer.alloc(256 * 1024)
  let left = total
  let seq = 0
  const write = (): void => {
    while (left > 0) {
      const n = Math.min(chunk.length, left)
      for (let i = 0; i < n; i += 4) chunk.writeUInt32BE(seq++ >>> 0, i)
      const piece = chunk.subarray(0, n)
      sent.update(piece)
      left -= n
      if (!socket.write(Buffer.from(piece))) {
        socket.once('drain', write)
        return
      }
    }
    socket.end()
  }
  write()
})
socket.on('data', (d: Buffer) => {
  got.update(d)
  if (received < 512) head.push(d.subarray(0, 512 - received))
  received += d.length
})
const done = (result: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ ...result, ms: Math.round(performance.now() - started) })}\n`)
  process.exit(0)
}
socket.on('end', () => {
  done({
    ok: true,
    remote,
    sent: sent.digest('hex'),
    received,
    got: got.digest('hex'),
    text: Buffer.concat(head).toString('utf8'),
  })
})
socket.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, code: err.code, message: err.message }))
