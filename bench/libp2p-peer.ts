/**
 * Benchmark child process: a raw js-libp2p peer assembled with Warren's own `createNode` (TCP, Noise, Yamux),
 * so the "raw libp2p stream" figures use exactly the stack a forward uses, without Warren's service layer.
 *
 * `libp2p-peer.ts listen`: serves the xfer and echo protocols; prints `{"addr": …}`.
 * `libp2p-peer.ts dial <addr>`: dials once, prints `{"ready": true}`, then answers one JSON line per command
 * line on stdin: `up <bytes>` → `{"ms": …}`, `down <bytes>` → `{"ms": …}`, `setup <count>` and `setup-lazy <count>`
 * (optimistic protocol select) → `{"samples": […]}`.
 */
import { createInterface } from 'node:readline'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Uint8ArrayList } from 'uint8arraylist'
import { generateNodeKey } from '../src/identity/keys.ts'
import { createNode } from '../src/node/create.ts'
import { CHUNK, decodeRequest, encodeCount, encodeRequest, HEADER_BYTES, PAYLOAD } from './xfer.ts'

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
  const header = new Uint8ArrayList()
  let mode: 'U' | 'D' | undefined
  let want = 0
  let got = 0
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    if (mode === undefined) {
      header.append(evt.data)
      if (header.byteLength < HEADER_BYTES) return
      const req = decodeRequest(header.subarray(0, HEADER_BYTES))
      mode = req.mode
      want = req.length
      got = header.byteLength - HEADER_BYTES
      if (mode === 'D') {
        stream.removeEventListener('message', onMessage)
        sendAll(stream, want).then(
          () => stream.close(),
          (err: Error) => stream.abort(err),
        )
        return
      }
    } else got += evt.data.byteLength
    if (got >= want) {
      stream.removeEventListener('message', onMessage)
      stream.send(encodeCount(got))
      void stream.close().catch(() => {})
    }
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

async function listen(): Promise<void> {
  const node = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
  await node.handle(XFER, (stream) => serveXfer(stream), { maxInboundStreams: 64 })
  await node.handle(ECHO, (stream) => serveEcho(stream), { maxInboundStreams: 4096 })
  process.stdout.write(`${JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString() })}\n`)
  const stop = (): void => {
    void Promise.resolve(node.stop()).finally(() => process.exit(0))
  }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
}

async function dial(addr: string): Promise<void> {
  const node = await createNode({ privateKey: await generateNodeKey(), listen: [] })
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
    setup: (count) => setup(count, true),
    // optimistic protocol select: the protocol name goes out with the first data, saving one round trip
    'setup-lazy': (count) => setup(count, false),
  }

  process.on('SIGTERM', () => process.exit(0)) // a clean exit, so --cpu-prof writes its profile
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
  for await (const line of createInterface({ input: process.stdin })) {
    const [name, arg] = line.trim().split(/\s+/)
    try {
      const fn = commands[name ?? '']
      if (fn === undefined) throw new Error(`unknown command ${name}`)
      process.stdout.write(`${JSON.stringify(await fn(Number(arg)))}\n`)
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`)
    }
  }
  await node.stop()
  process.exit(0)
}

const [role, addr] = process.argv.slice(2)
if (role === 'listen') await listen()
else if (role === 'dial' && addr !== undefined) await dial(addr)
else {
  process.stderr.write('usage: libp2p-peer.ts listen | dial <multiaddr>\n')
  process.exit(2)
}
