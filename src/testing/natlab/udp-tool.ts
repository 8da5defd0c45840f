/**
 * A tiny UDP tool for lab tests, run inside a lab host:
 *
 * - `udp-tool.ts stun <listenMs> <host:port>…` binds one socket, asks each STUN server for the mapping from that same
 *   socket, prints `{"type":"mapped","local":…,"mapped":[…]}`, then prints every other datagram it receives for
 *   `listenMs` as `{"type":"datagram",…}` and finally `{"type":"end"}`.
 * - `udp-tool.ts send <host> <port> <text>` sends one datagram and exits.
 * - `udp-tool.ts netcheck <host:port>…` prints `{"type":"netcheck","report":…}` from {@link netcheck}.
 *
 * @packageDocumentation
 */
import { createSocket } from 'node:dgram'
import { fromDgram } from '../../p2p/udx/packet-socket.ts'
import { stunBinding } from '../../stun/client.ts'
import { netcheck } from '../../traversal/net-report/netcheck.ts'

const [mode, ...args] = process.argv.slice(2)
const print = (msg: object): void => {
  process.stdout.write(`${JSON.stringify(msg)}\n`)
}
const socket = createSocket('udp4')
await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', () => resolve()))

if (mode === 'send') {
  const [host = '', port = '0', text = ''] = args
  await new Promise<void>((resolve) => socket.send(text, Number(port), host, () => resolve()))
  socket.close()
} else if (mode === 'netcheck') {
  const servers = args.map((a) => ({ host: a.split(':')[0] ?? '', port: Number(a.split(':')[1]) }))
  print({ type: 'netcheck', report: await netcheck(fromDgram(socket), servers) })
  socket.close()
} else if (mode === 'stun') {
  const [listenMs = '0', ...servers] = args
  const packet = fromDgram(socket)
  const mapped = []
  for (const s of servers) {
    const [host = '', port = '0'] = s.split(':')
    mapped.push((await stunBinding(packet, { host, port: Number(port) })).mapped)
  }
  print({ type: 'mapped', local: socket.address().port, mapped })
  packet.onMessage((data, from) => print({ type: 'datagram', from, text: Buffer.from(data).toString('utf8') }))
  setTimeout(
    () => {
      print({ type: 'end' })
      socket.close()
    },
    Math.min(Number(listenMs), 30_000),
  )
} else {
  process.stderr.write(
    'usage: udp-tool.ts stun <listenMs> <host:port>… | send <host> <port> <text> | netcheck <host:port>…\n',
  )
  process.exit(2)
}
