/**
 * Benchmark child process: relay-floor.ts over Warren's libp2p stack instead of a bare TCP connection. `front`
 * and `back` are two libp2p nodes built with Warren's `createNode` (TCP, Noise, Yamux, Warren's write coalescing
 * and cipher), and all clients share ONE libp2p stream: the same 8-byte frames (client id, length), the frames of
 * one event-loop turn sent as one stream message. No HTTP, no per-client streams, no per-client flow control.
 *
 * It measures the most a relay on this stack can reach on this machine: the ceiling of any design that
 * multiplexes many exchanges into one stream, which would still add HTTP work and per-exchange credit on top
 * (docs/performance.md).
 *
 *   node bench/relay-floor-libp2p.ts back <target port>   → prints {"addr": "<multiaddr>"}
 *   node bench/relay-floor-libp2p.ts front <multiaddr>     → prints {"port": N}
 *
 * Exits on SIGTERM or when stdin closes.
 */
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'
import { generateNodeKey } from '../src/identity/keys.ts'
import { createNode } from '../src/p2p/create.ts'
import { exitWithParent, frameHeader, frameReader, type Link, relayBack, relayFront } from './relay-floor.ts'

const PROTO = '/warren-bench/relay-floor/1.0.0'

/** A link over one libp2p stream: the frames of one turn joined into one stream message. */
function streamLink(stream: Stream): Link {
  return (onFrame) => {
    stream.maxReadBufferLength = 64 * 1024 * 1024
    const read = frameReader(onFrame)
    stream.addEventListener('message', (evt: { data: Uint8Array | Uint8ArrayList }) => {
      const d = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      read(Buffer.from(d.buffer, d.byteOffset, d.byteLength))
    })
    let out: Buffer[] = []
    let size = 0
    const flush = (): void => {
      const joined = Buffer.concat(out, size)
      out = []
      size = 0
      stream.send(joined)
    }
    return (id, data) => {
      if (out.length === 0) setImmediate(flush)
      out.push(frameHeader(id, data.length))
      size += 8
      if (data.length > 0) {
        out.push(data)
        size += data.length
      }
    }
  }
}

const [role, arg] = process.argv.slice(2)
if (role === 'back' && arg !== undefined) {
  const node = await createNode({
    privateKey: await generateNodeKey(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    skipUnheardEvents: true,
  })
  await node.handle(PROTO, (stream) => {
    const cleanUp = relayBack(streamLink(stream), Number(arg))
    stream.addEventListener('close', cleanUp)
  })
  process.stdout.write(`${JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString() })}\n`)
} else if (role === 'front' && arg !== undefined) {
  const node = await createNode({ privateKey: await generateNodeKey(), listen: [], skipUnheardEvents: true })
  relayFront(streamLink(await node.dialProtocol(multiaddr(arg), PROTO)))
} else {
  process.stderr.write('usage: relay-floor-libp2p.ts back <target port> | front <multiaddr>\n')
  process.exit(2)
}
exitWithParent()
