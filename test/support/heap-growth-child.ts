/**
 * Child process of test/daemon/heap-growth.test.ts: two nodes of Warren's stack (`createNode`: TCP, Noise, Yamux) in
 * this process, a transfer over one stream to warm up, a last-resort major collection at idle (what the idle trim's
 * compaction runs), then a measured transfer. Prints `{"majors": n, "bytes": b, "sha256": …}` for the measured one:
 * the major collections V8 ran during it, and what the receiving end counted and hashed.
 *
 * Run with `--expose-gc --max-semi-space-size=2`, with or without `--heap-growing-percent`.
 */
import { createHash } from 'node:crypto'
import { PerformanceObserver } from 'node:perf_hooks'
import type { Stream } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'

const PROTOCOL = '/warren-test/sink/1.0.0'
const MiB = 1024 * 1024
const CHUNK = 64 * 1024
const gc = (globalThis as { gc?: (o: object) => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

let majors = 0
new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 4) majors++
}).observe({ entryTypes: ['gc'] })

const listener = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
const dialer = await createNode({ privateKey: await generateNodeKey(), listen: [] })
/** What the sink received on its latest stream: byte count and SHA-256, settled when the sender half-closes. */
let received: Promise<{ bytes: number; sha256: string }> = Promise.resolve({ bytes: 0, sha256: '' })
await listener.handle(PROTOCOL, (stream) => {
  received = (async () => {
    const hash = createHash('sha256')
    let bytes = 0
    for await (const c of stream) {
      const b = c.subarray()
      bytes += b.byteLength
      hash.update(b)
    }
    await stream.close()
    return { bytes, sha256: hash.digest('hex') }
  })()
})
const conn = await dialer.dial(listener.getMultiaddrs()[0]!)

/** Sends `mib` MiB (a counter in every chunk, so no two chunks are the same object) and waits for the sink. */
async function send(mib: number): Promise<{ bytes: number; sha256: string; sent: string }> {
  const stream: Stream = await conn.newStream(PROTOCOL)
  const hash = createHash('sha256')
  for (let i = 0; i < (mib * MiB) / CHUNK; i++) {
    const chunk = Buffer.allocUnsafe(CHUNK).fill(i & 0xff)
    chunk.writeUInt32BE(i, 0)
    hash.update(chunk)
    if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(60_000) })
  }
  await stream.close()
  return { ...(await received), sent: hash.digest('hex') }
}

await send(Number(process.env.WARM_MIB ?? 128))
gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
await new Promise((r) => setTimeout(r, 500))
const before = majors
const r = await send(Number(process.env.MIB ?? 256))
process.stdout.write(`${JSON.stringify({ majors: majors - before, bytes: r.bytes, sha256: r.sha256, sent: r.sent })}\n`)
await dialer.stop()
await listener.stop()
