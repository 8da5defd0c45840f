/**
 * Benchmark child process: a raw js-libp2p peer assembled with Warren's own `createNode` (TCP, Noise, Yamux),
 * so the "raw libp2p stream" figures use exactly the stack a forward uses, without Warren's service layer.
 *
 * `libp2p-peer.ts listen [udx|quic]`: serves the xfer and echo protocols; prints `{"addr": …}` (with `udx`, the address
 * of Warren's UDX transport on 127.0.0.1 instead of TCP: Noise + Yamux over one UDX stream, as on a direct path; with
 * `quic`, a QUIC address of `@chainsafe/libp2p-quic`, installed with `npm install --no-save @chainsafe/libp2p-quic`:
 * QUIC's TLS 1.3 and streams instead of Noise and Yamux). A dialer given a QUIC address dials it over QUIC.
 * `libp2p-peer.ts dial <addr>`: dials once, prints `{"ready": true}`, then answers one JSON line per command
 * line on stdin: `up <bytes>` → `{"ms": …}`, `down <bytes>` → `{"ms": …}`, `setup <count>` and `setup-lazy <count>`
 * (optimistic protocol select) → `{"samples": […]}`, `rr <n>` (64 echo streams at once, each `n` round trips of 100 bytes
 * one after another) → `{"ms": …, "exchanges": …}`, `connect <count>` (that many new connections one after another,
 * each dialled, checked with one echoed byte and closed) → `{"samples": […]}`, `pause <bytes>` (a download whose reader
 * pauses for its first 2 s) → `{"got": …, "ended": …}`.
 *
 * `WARREN_BENCH_STOCK=1` runs stock js-libp2p (no Warren wrappers); `WARREN_BENCH_ENCRYPTER=tls` offers TLS 1.3
 * (`@libp2p/tls`, installed with `npm install --no-save @libp2p/tls`) instead of Noise (bench/encrypters.ts).
 */
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Uint8ArrayList } from 'uint8arraylist'
import { generateNodeKey } from '../src/identity/keys.ts'
import { createNode, type NodeOptions } from '../src/p2p/create.ts'
import { UdxHub, udpMultiaddr } from '../src/p2p/udx/transport.ts'
import { answerCommands } from './proc.ts'
import { CHUNK, encodeCount, encodeRequest, PAYLOAD, xferServer } from './xfer.ts'

const XFER = '/warren-bench/xfer/1.0.0'
const ECHO = '/warren-bench/echo/1.0.0'
/** Larger than the Yamux window, so a busy reader never turns into a reset. */
const READ_BUFFER = 64 * 1024 * 1024

async function sendAll(stream: Stream, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; ) {
    const n = Math.min(CHUNK, bytes - sent)
    sent += n
    if (!stream.send(n === CHUNK ? PAYLOAD : PAYLOAD.subarray(0, n))) await stream.onDrain()
  }
}

function serveXfer(stream: Stream): void {
  stream.maxReadBufferLength = READ_BUFFER
  const feed = xferServer({
    download: (bytes) => {
      sendAll(stream, bytes).then(
        () => stream.close(),
        (err: Error) => stream.abort(err),
      )
    },
    uploaded: (bytes) => {
      stream.send(encodeCount(bytes))
      void stream.close().catch(() => {})
    },
  })
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    if (feed(evt.data)) stream.removeEventListener('message', onMessage)
  }
  stream.addEventListener('message', onMessage)
  if (stream.readStatus === 'paused') stream.resume()
}

function serveEcho(stream: Stream): void {
  stream.addEventListener('message', (evt) => {
    stream.send(evt.data)
  })
  stream.addEventListener('remoteCloseWrite', () => {
    void stream.close().catch(() => {})
  })
  if (stream.readStatus === 'paused') stream.resume()
}

/** Resolves with the first `n` bytes the stream delivers. */
function firstBytes(stream: Stream, n: number, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const buf = new Uint8ArrayList()
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      buf.append(evt.data)
      if (buf.byteLength >= n) {
        clearTimeout(timer)
        stream.removeEventListener('message', onMessage)
        resolve(buf.subarray(0, n))
      }
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', (evt) => {
      clearTimeout(timer)
      reject((evt as Event & { error?: Error }).error ?? new Error('stream closed'))
    })
  })
}

/** `WARREN_BENCH_STOCK=1`: stock js-libp2p (no Warren wrappers, see `NodeOptions.stock`), the baseline of bench/run.ts. */
const STOCK = process.env.WARREN_BENCH_STOCK === '1'

/** The encrypters `WARREN_BENCH_ENCRYPTER` asks for instead of Noise (`tls`: `@libp2p/tls`, not a dependency of Warren). */
async function encrypters(): Promise<Pick<NodeOptions, 'connectionEncrypters'>> {
  const asked = process.env.WARREN_BENCH_ENCRYPTER ?? 'noise'
  if (asked === 'noise') return {}
  if (asked !== 'tls') throw new Error(`WARREN_BENCH_ENCRYPTER=${asked}: noise or tls`)
  const name = '@libp2p/tls'
  const { tls } = (await import(name)) as { tls: () => NonNullable<NodeOptions['connectionEncrypters']>[number] }
  // Warren's Noise length decoder has no Noise decoder to replace on a TLS connection, and says so once per process
  process.removeAllListeners('warning')
  process.on('warning', (w) => {
    if (!w.message.includes('quietNoiseDecoder')) process.stderr.write(`${w.name}: ${w.message}\n`)
  })
  return { connectionEncrypters: [tls()] }
}

/** QUIC from `@chainsafe/libp2p-quic` (not a dependency of Warren): the transport for `createNode`. */
async function quicTransport(): Promise<Pick<NodeOptions, 'transports'>> {
  const name = '@chainsafe/libp2p-quic'
  const { quic } = (await import(name)) as { quic: () => NonNullable<NodeOptions['transports']>[number] }
  return { transports: [quic()] }
}

async function listen(transport: string): Promise<void> {
  const privateKey = await generateNodeKey()
  const udxHub = transport === 'udx' ? new UdxHub() : undefined
  const quic = transport === 'quic'
  const node =
    udxHub === undefined
      ? await createNode({
          privateKey,
          listen: [quic ? '/ip4/127.0.0.1/udp/0/quic-v1' : '/ip4/127.0.0.1/tcp/0'],
          ...(quic ? await quicTransport() : {}),
          // the test preset takes 1,000 new connections a second from one address (`connect` makes ~100)
          preset: 'test',
          stock: STOCK,
          skipUnheardEvents: !STOCK,
          ...(await encrypters()),
        })
      : await createNode({ privateKey, listen: ['/ip4/127.0.0.1/udp/0'], udxHub, skipUnheardEvents: true })
  await node.handle(XFER, (stream) => serveXfer(stream), { maxInboundStreams: 64 })
  await node.handle(ECHO, (stream) => serveEcho(stream), { maxInboundStreams: 4096 })
  // nodes do not announce their UDX socket (src/p2p/create.ts), so name it here
  const addr =
    udxHub === undefined
      ? node.getMultiaddrs()[0]!
      : udpMultiaddr(udxHub.primary()!.address()).encapsulate(`/p2p/${node.peerId.toString()}`)
  process.stdout.write(`${JSON.stringify({ addr: addr.toString() })}\n`)
  const stop = (): void => {
    void Promise.resolve(node.stop()).finally(() => process.exit(0))
  }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
}

async function dial(addr: string): Promise<void> {
  const udxHub = addr.includes('/udp/') ? new UdxHub() : undefined
  const node = await createNode({
    privateKey: await generateNodeKey(),
    listen: [],
    stock: STOCK,
    skipUnheardEvents: !STOCK,
    ...(udxHub ? { udxHub } : {}),
    ...(addr.includes('/quic-v1') ? await quicTransport() : {}),
    ...(await encrypters()),
  })
  const conn = await node.dial(multiaddr(addr))
  const TIMEOUT = 300_000

  const setup = async (count: number, negotiateFully: boolean) => {
    const samples: number[] = []
    const one = Uint8Array.of(120)
    for (let i = 0; i < count; i++) {
      const t0 = performance.now()
      const stream = await conn.newStream(ECHO, { signal: AbortSignal.timeout(10_000), negotiateFully })
      const echoed = firstBytes(stream, 1, 10_000)
      stream.send(one)
      await echoed
      samples.push(performance.now() - t0)
      void stream.close().catch(() => {})
    }
    return { samples }
  }

  /** 64 echo streams at once, each `n` round trips of 100 bytes one after another. */
  const rr = async (n: number) => {
    const streams = await Promise.all(Array.from({ length: 64 }, () => conn.newStream(ECHO)))
    const message = new Uint8Array(100).fill(7)
    const t0 = performance.now()
    await Promise.all(
      streams.map(
        (stream) =>
          new Promise<void>((resolve, reject) => {
            let left = n
            let got = 0
            const timer = setTimeout(() => reject(new Error(`${left} round trips left after ${TIMEOUT} ms`)), TIMEOUT)
            stream.addEventListener('message', (evt) => {
              got += evt.data.byteLength
              if (got < message.byteLength) return
              if (got > message.byteLength) reject(new Error(`${got} bytes echoed for ${message.byteLength}`))
              got = 0
              if (--left > 0) stream.send(message)
              else {
                clearTimeout(timer)
                resolve()
              }
            })
            stream.addEventListener('close', (evt) => {
              if (left > 0) reject((evt as Event & { error?: Error }).error ?? new Error('stream closed'))
            })
            stream.send(message)
          }),
      ),
    )
    const ms = performance.now() - t0
    await Promise.all(streams.map((s) => s.close().catch(() => {})))
    return { ms, exchanges: 64 * n }
  }

  /** `count` new connections one after another: dialled, one byte echoed, closed. */
  const connect = async (count: number) => {
    const samples: number[] = []
    const one = Uint8Array.of(120)
    for (let i = 0; i < count; i++) {
      const t0 = performance.now()
      const c = await node.dial(multiaddr(addr), { force: true, signal: AbortSignal.timeout(10_000) })
      const stream = await c.newStream(ECHO, { signal: AbortSignal.timeout(10_000) })
      const echoed = firstBytes(stream, 1, 10_000)
      stream.send(one)
      await echoed
      samples.push(performance.now() - t0)
      await c.close()
    }
    return { samples }
  }

  const commands: Record<string, (arg: number) => Promise<unknown>> = {
    up: async (bytes) => {
      const stream = await conn.newStream(XFER)
      stream.maxReadBufferLength = READ_BUFFER
      const answer = firstBytes(stream, 8, TIMEOUT)
      const t0 = performance.now()
      stream.send(encodeRequest('U', bytes))
      await sendAll(stream, bytes)
      const count = Number(Buffer.from(await answer).readBigUInt64BE(0))
      const ms = performance.now() - t0
      await stream.close()
      if (count !== bytes) throw new Error(`listener counted ${count} bytes, sent ${bytes}`)
      return { ms }
    },
    down: async (bytes) => {
      const stream = await conn.newStream(XFER)
      stream.maxReadBufferLength = READ_BUFFER
      const ms = await new Promise<number>((resolve, reject) => {
        let got = 0
        const t0 = performance.now()
        const timer = setTimeout(() => reject(new Error(`download did not finish in ${TIMEOUT} ms`)), TIMEOUT)
        stream.addEventListener('message', (evt) => {
          got += evt.data.byteLength
          if (got === bytes) {
            clearTimeout(timer)
            resolve(performance.now() - t0)
          }
        })
        stream.addEventListener('close', (evt) => {
          if (got !== bytes) reject((evt as Event & { error?: Error }).error ?? new Error(`ended after ${got} bytes`))
        })
        stream.send(encodeRequest('D', bytes))
      })
      await stream.close()
      return { ms }
    },
    /** A download whose reader pauses for its first 2 s: the bytes it got and how it ended. */
    pause: async (bytes) => {
      const stream = await conn.newStream(XFER)
      const outcome = await new Promise<{ got: number; ended: string }>((resolve) => {
        let got = 0
        const timer = setTimeout(() => resolve({ got, ended: `no end within ${TIMEOUT} ms` }), TIMEOUT)
        const done = (ended: string): void => {
          clearTimeout(timer)
          resolve({ got, ended })
        }
        stream.addEventListener('message', (evt) => {
          got += evt.data.byteLength
          if (got === bytes) done('every byte')
        })
        stream.addEventListener('close', (evt) => {
          if (got !== bytes) done((evt as Event & { error?: Error }).error?.message ?? 'closed early')
        })
        stream.send(encodeRequest('D', bytes))
        stream.pause()
        setTimeout(() => {
          if (stream.status === 'open') stream.resume()
        }, 2000)
      })
      await stream.close().catch(() => {})
      return outcome
    },
    setup: (count) => setup(count, true),
    // optimistic protocol select: the protocol name goes out with the first data, saving one round trip
    'setup-lazy': (count) => setup(count, false),
    rr,
    connect,
  }

  await answerCommands(commands)
  await node.stop()
  process.exit(0)
}

const [role, addr] = process.argv.slice(2)
if (role === 'listen') await listen(addr ?? 'tcp')
else if (role === 'dial' && addr !== undefined) await dial(addr)
else {
  process.stderr.write('usage: libp2p-peer.ts listen [tcp|udx|quic] | dial <multiaddr>\n')
  process.exit(2)
}
