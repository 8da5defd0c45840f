/**
 * Benchmark child process: a raw udx-native stream with Warren's stream-open handshake ({@link UdxEndpoint}) and no
 * Noise or Yamux: the ceiling for libp2p over UDX on this machine. Same protocol and commands as `libp2p-peer.ts`.
 *
 * `udx-raw-peer.ts listen`: prints `{"addr": "/ip4/127.0.0.1/udp/<port>"}`, serves the xfer protocol on each stream.
 * `udx-raw-peer.ts dial <addr>`: prints `{"ready": true}`, then answers `up <bytes>` / `down <bytes>` with `{"ms": …}`.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { UDXStream } from 'udx-native'
import { Uint8ArrayList } from 'uint8arraylist'
import { UdxEndpoint } from '../src/p2p/udx/endpoint.ts'
import { UDX_SOCKET_BUFFER, udpEndpointOf, udpMultiaddr } from '../src/p2p/udx/transport.ts'
import { answerCommands } from './proc.ts'
import { CHUNK, encodeCount, encodeRequest, PAYLOAD, xferServer } from './xfer.ts'

const TIMEOUT = 300_000

/** The socket buffers Warren's UDX transport asks for, so the ceiling is measured like the real thing. */
function withBuffers(endpoint: UdxEndpoint): UdxEndpoint {
  endpoint.socket.setRecvBufferSize(UDX_SOCKET_BUFFER)
  endpoint.socket.setSendBufferSize(UDX_SOCKET_BUFFER)
  return endpoint
}

async function writeAll(stream: UDXStream, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; ) {
    const n = Math.min(CHUNK, bytes - sent)
    sent += n
    if (!stream.write(n === CHUNK ? PAYLOAD : PAYLOAD.subarray(0, n))) {
      await new Promise((resolve) => stream.once('drain', resolve))
    }
  }
}

function serve(stream: UDXStream): void {
  stream.on('error', () => {})
  stream.once('end', () => stream.end())
  const feed = xferServer({
    download: (bytes) => {
      stream.resume()
      writeAll(stream, bytes).then(
        () => stream.end(),
        (err: Error) => stream.destroy(err),
      )
    },
    uploaded: (bytes) => {
      stream.write(encodeCount(bytes))
      stream.end()
    },
  })
  const onData = (data: Uint8Array): void => {
    if (feed(data)) stream.off('data', onData)
  }
  stream.on('data', onData)
}

async function listen(): Promise<void> {
  const endpoint = withBuffers(new UdxEndpoint({ host: '127.0.0.1', port: 0, onInbound: (stream) => serve(stream) }))
  process.stdout.write(`${JSON.stringify({ addr: udpMultiaddr(endpoint.address()).toString() })}\n`)
  const stop = (): void => {
    void endpoint.close().finally(() => process.exit(0))
  }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
}

async function dial(addr: string): Promise<void> {
  const to = udpEndpointOf(multiaddr(addr))!
  const endpoint = withBuffers(new UdxEndpoint())
  const open = async (): Promise<UDXStream> => {
    const stream = await endpoint.open(to)
    stream.on('error', () => {})
    return stream
  }
  const commands: Record<string, (bytes: number) => Promise<{ ms: number }>> = {
    up: async (bytes) => {
      const stream = await open()
      const answer = new Promise<number>((resolve, reject) => {
        const buf = new Uint8ArrayList()
        stream.on('data', (d: Uint8Array) => {
          buf.append(d)
          if (buf.byteLength >= 8) resolve(Number(Buffer.from(buf.subarray(0, 8)).readBigUInt64BE(0)))
        })
        stream.once('close', () => reject(new Error('closed before the count')))
        setTimeout(() => reject(new Error(`upload did not finish in ${TIMEOUT} ms`)), TIMEOUT).unref()
      })
      const t0 = performance.now()
      stream.write(encodeRequest('U', bytes))
      await writeAll(stream, bytes)
      const count = await answer
      const ms = performance.now() - t0
      stream.end()
      if (count !== bytes) throw new Error(`listener counted ${count} bytes, sent ${bytes}`)
      return { ms }
    },
    down: async (bytes) => {
      const stream = await open()
      const ms = await new Promise<number>((resolve, reject) => {
        let got = 0
        const t0 = performance.now()
        stream.on('data', (d: Uint8Array) => {
          got += d.byteLength
          if (got === bytes) resolve(performance.now() - t0)
        })
        stream.once('close', () => {
          if (got !== bytes) reject(new Error(`ended after ${got} bytes`))
        })
        setTimeout(() => reject(new Error(`download did not finish in ${TIMEOUT} ms`)), TIMEOUT).unref()
        stream.write(encodeRequest('D', bytes))
      })
      stream.end()
      return { ms }
    },
  }
  await answerCommands(commands)
  await endpoint.close()
  process.exit(0)
}

const [role, addr] = process.argv.slice(2)
if (role === 'listen') await listen()
else if (role === 'dial' && addr !== undefined) await dial(addr)
else {
  process.stderr.write('usage: udx-raw-peer.ts listen | dial <multiaddr>\n')
  process.exit(2)
}
