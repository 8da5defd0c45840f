/**
 * The STUN responder a lab router's miniupnpd asks for its public address: `node miniupnpd-stun.ts <host> <port>`.
 *
 * miniupnpd refuses to map ports when its WAN address is private or reserved, and every lab address is in the
 * reserved 198.18.0.0/15; with `ext_perform_stun=yes` it learns its address by STUN instead and maps ports when four
 * requests (three of them with an RFC 3489 CHANGE-REQUEST) come back unchanged. Warren's own responder answers
 * CHANGE-REQUEST with a 420 error, as RFC 5389 asks; this one answers every Binding request with a MAPPED-ADDRESS
 * from the address it was asked on, which tells miniupnpd that nothing filters its WAN side (true: it is the router).
 * Prints `{"type":"listening"}` when ready; exits when its standard input closes or on SIGTERM.
 *
 * @packageDocumentation
 */
import { createSocket } from 'node:dgram'

const host = process.argv[2] ?? '0.0.0.0'
const port = Number(process.argv[3] ?? 3479)
const socket = createSocket('udp4')
socket.on('message', (msg, rinfo) => {
  // a Binding request: type 0x0001, 20-byte header
  if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0001) return
  const out = Buffer.alloc(32)
  out.writeUInt16BE(0x0101, 0)
  out.writeUInt16BE(12, 2)
  msg.copy(out, 4, 4, 20) // magic cookie (or RFC 3489 id) and transaction id, as asked
  out.writeUInt16BE(0x0001, 20) // MAPPED-ADDRESS
  out.writeUInt16BE(8, 22)
  out.writeUInt8(0x01, 25) // IPv4
  out.writeUInt16BE(rinfo.port, 26)
  for (const [i, b] of rinfo.address.split('.').entries()) out.writeUInt8(Number(b), 28 + i)
  socket.send(out, rinfo.port, rinfo.address)
})
socket.bind(port, host, () => process.stdout.write(`${JSON.stringify({ type: 'listening', host, port })}\n`))
const stop = (): void => {
  socket.close(() => process.exit(0))
}
process.stdin.on('end', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
