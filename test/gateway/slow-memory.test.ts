/**
 * Memory under a slow reader: a client reading a 64 MiB download through the gateway at 1 MiB/s must not make
 * either node hold more than about a stream window and the socket buffers, however far the service is ahead.
 * Both nodes run in this process so that their retained memory can be measured after a forced garbage
 * collection (RSS alone also counts garbage not yet collected).
 */
import assert from 'node:assert/strict'
import { type IncomingMessage, request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { MiB, pace, readPaced } from '../support/transfer.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Memory this process holds after a full collection: heap plus Buffers. */
function retained(): { heap: number; buffers: number; rss: number } {
  gc()
  gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, buffers: m.arrayBuffers, rss: m.rss }
}

describe('memory under a slow reader', () => {
  let p: Pair
  before(async () => {
    p = await startPair()
  })
  after(() => p.stop())

  it('a 1 MiB/s reader of 64 MiB through the gateway keeps both nodes within a few windows', async () => {
    const [host, port] = p.access.split(':') as [string, string]
    const base = retained()
    const req = request({ host, port: Number(port), path: `/http/n1/web/bytes?n=${64 * MiB}`, agent: false })
    req.end()
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      req.once('response', resolve).once('error', reject),
    )
    assert.equal(res.statusCode, 200)
    const reading = readPaced(res, pace.mibps(1))
    let peak = { heap: 0, buffers: 0, rss: 0 }
    // 8 s: without back-pressure the service's 64 MiB would be in the nodes' buffers long before that
    for (let i = 0; i < 4; i++) {
      await sleep(2_000)
      const now = retained()
      peak = {
        heap: Math.max(peak.heap, now.heap),
        buffers: Math.max(peak.buffers, now.buffers),
        rss: Math.max(peak.rss, now.rss),
      }
    }
    res.destroy()
    const r = await reading
    assert.notEqual(r.ending, 'end')
    assert.ok(r.bytes > 0 && r.bytes < 64 * MiB, `read ${r.bytes} bytes`) // cut mid-file, as intended
    const mib = (n: number): string => (n / MiB).toFixed(1)
    const grew = { heap: peak.heap - base.heap, buffers: peak.buffers - base.buffers, rss: peak.rss - base.rss }
    console.log(
      `both nodes, 1 MiB/s reader of 64 MiB, after GC: Buffers +${mib(grew.buffers)} MiB, heap +${mib(grew.heap)} MiB; ` +
        `RSS +${mib(grew.rss)} MiB; ${mib(r.bytes)} MiB read`,
    )
    assert.ok(grew.buffers < 16 * MiB, `Buffers grew ${grew.buffers} bytes`)
    assert.ok(grew.heap < 16 * MiB, `heap grew ${grew.heap} bytes`)
  })
})
