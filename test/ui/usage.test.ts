/**
 * Who used which service (src/ui/usage.ts), fed by a node's stream counters: streams asked for (refused ones
 * included), open, bytes each way (live, through the counters' sampler), ends by cause, per service and peer;
 * outgoing streams are not counted; past MAX_PAIRS pairs, new peers are counted as `other`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { StreamCounters } from '../../src/services/stream-counters.ts'
import { MAX_PAIRS, serviceUsage } from '../../src/ui/usage.ts'

describe('service usage', () => {
  it('keeps each service and peer pair: streams, open, bytes, ends by cause', () => {
    const counters = new StreamCounters()
    const usage = serviceUsage(counters)
    let live = { bytesIn: 0, bytesOut: 0 }
    const web = counters.start({ direction: 'incoming', service: 'web', peer: 'P1' }, () => live)
    counters.never({ direction: 'incoming', service: 'db', peer: 'P2' }, 'refused', 'not allowed')
    counters.start({ direction: 'outgoing', service: 'web', peer: 'P3' }).end('ok', { bytesIn: 5, bytesOut: 5 })
    live = { bytesIn: 100, bytesOut: 2000 }
    counters.sample()
    const row = (service: string, peer: string) => usage.list().find((t) => t.service === service && t.peer === peer)
    assert.deepEqual(
      { ...row('web', 'P1'), lastUse: 0 },
      { service: 'web', peer: 'P1', streams: 1, open: 1, bytesIn: 100, bytesOut: 2000, ends: {}, lastUse: 0 },
    )
    web.end('reset', { bytesIn: 150, bytesOut: 2500 })
    assert.deepEqual(
      { ...row('web', 'P1'), lastUse: 0 },
      { service: 'web', peer: 'P1', streams: 1, open: 0, bytesIn: 150, bytesOut: 2500, ends: { reset: 1 }, lastUse: 0 },
    )
    assert.deepEqual(row('db', 'P2')?.ends, { refused: 1 })
    assert.equal(row('db', 'P2')?.streams, 1)
    assert.equal(row('web', 'P3'), undefined, 'outgoing streams are not usage of this node')
    usage.close()
    counters.never({ direction: 'incoming', service: 'web', peer: 'P9' }, 'refused', 'x')
    assert.equal(row('web', 'P9'), undefined, 'nothing is counted once closed')
  })

  it(`counts streams of peers past ${MAX_PAIRS} pairs under "other"`, () => {
    const counters = new StreamCounters()
    const usage = serviceUsage(counters)
    for (let i = 0; i < MAX_PAIRS + 3; i++) {
      counters.never({ direction: 'incoming', service: 'web', peer: `P${i}` }, 'refused', 'x')
    }
    const list = usage.list()
    assert.equal(list.length, MAX_PAIRS + 1)
    assert.equal(list.find((t) => t.peer === 'other')?.streams, 3)
    usage.close()
  })
})
