/**
 * Benchmark child process: a TCP port forward over stock js-libp2p (TCP, Noise, Yamux with Warren's window and
 * stream limits, none of Warren's patches or service layer), the "stock js-libp2p forwarder" of bench/peers.ts.
 *
 * `libp2p-forward.ts serve <port>[,<port>…]`: one protocol `/bench-forward/<i>` per target port on 127.0.0.1; each
 * stream is piped to a new TCP connection to its target. Prints `{"addr": …}`.
 * `libp2p-forward.ts client <addr> <n>`: dials `addr` once, then listens on n loopback ports; every TCP connection
 * to port i becomes a stream of `/bench-forward/<i>`. Prints `{"ports": […]}`.
 * `libp2p-forward.ts cold <addr> <i> <n>`: n times a new node (a new key), then, timed, a dial of `addr`, a stream of
 * `/bench-forward/<i>` and a 1-byte echo through it. Prints `{"samples": [ms, …]}` and exits.
 * Both exit on SIGTERM or when stdin closes. `WARREN_BENCH_WARREN_STACK=1` uses Warren's patched stack instead.
 */

import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { abortLocal, pipeStream } from '../../src/p2p/pipe.ts'
import { exitOnStop, tcpTo } from './child.ts'

const STOCK = process.env.WARREN_BENCH_WARREN_STACK !== '1'
const MAX_STREAMS = 8_192
const protocol = (i: number): string => `/bench-forward/${i}`

async function serve(ports: number[]): Promise<void> {
  const node = await createNode({
    privateKey: await generateNodeKey(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    stock: STOCK,
    maxStreamsPerConnection: MAX_STREAMS,
  })
  for (const [i, port] of ports.entries()) {
    await node.handle(
      protocol(i),
      async (stream) => {
        try {
          await pipeStream(stream, await tcpTo(port))
        } catch (err) {
          stream.abort(err as Error)
        }
      },
      { maxInboundStreams: MAX_STREAMS },
    )
  }
  process.stdout.write(`${JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString() })}\n`)
  exitOnStop(async () => {
    await node.stop()
  })
}

async function client(addr: string, n: number): Promise<void> {
  const node = await createNode({
    privateKey: await generateNodeKey(),
    listen: [],
    stock: STOCK,
    maxStreamsPerConnection: MAX_STREAMS,
  })
  const conn = await node.dial(multiaddr(addr))
  const ports: number[] = []
  const servers: Server[] = []
  for (let i = 0; i < n; i++) {
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {})
      conn
        .newStream(protocol(i), { maxOutboundStreams: MAX_STREAMS })
        .then((stream) => pipeStream(stream, socket))
        .catch((err: Error) => abortLocal(socket, err))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    ports.push((server.address() as { port: number }).port)
    servers.push(server)
  }
  process.stdout.write(`${JSON.stringify({ ports })}\n`)
  exitOnStop(async () => {
    for (const s of servers) s.close()
    await node.stop()
  })
}

/** The first connection of a node never met: a new node per sample, then dial, stream and a 1-byte echo, timed. */
async function cold(addr: string, index: number, n: number): Promise<void> {
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const node = await createNode({ privateKey: await generateNodeKey(), listen: [], stock: STOCK })
    try {
      const byte = randomBytes(1)
      const t0 = performance.now()
      const conn = await node.dial(multiaddr(addr))
      const stream = await conn.newStream(protocol(index))
      stream.send(byte)
      let echoed: number | undefined
      for await (const chunk of stream) {
        echoed = chunk.subarray(0, 1)[0]
        break
      }
      samples.push(performance.now() - t0)
      if (echoed !== byte[0])
        throw new Error(`sample ${i}: the echo returned ${echoed === undefined ? 'nothing' : 'another byte'}`)
      await stream.close().catch(() => {})
    } finally {
      await node.stop()
    }
  }
  process.stdout.write(`${JSON.stringify({ samples })}\n`)
  process.exit(0)
}

const [role, arg, count, n] = process.argv.slice(2)
if (role === 'serve' && arg !== undefined) await serve(arg.split(',').map(Number))
else if (role === 'client' && arg !== undefined) await client(arg, Number(count ?? 1))
else if (role === 'cold' && arg !== undefined) await cold(arg, Number(count ?? 0), Number(n ?? 10))
else {
  process.stderr.write('usage: libp2p-forward.ts serve <port,…> | client <multiaddr> <n> | cold <multiaddr> <i> <n>\n')
  process.exit(2)
}
