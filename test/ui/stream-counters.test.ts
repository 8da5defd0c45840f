/** The stream counters behind `warren status`, the dashboard and /metrics: live bytes, ends, bounded tallies. */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { MAX_TALLIES, OTHER, StreamCounters, type StreamEnd } from '../../src/services/stream-counters.ts'

it('counts live bytes through the sampler, then the final figures and the cause at the end', () => {
  const c = new StreamCounters()
  const ends: StreamEnd[] = []
  c.listen({ ended: (e) => ends.push(e) })
  const bytes = { bytesIn: 0, bytesOut: 0 }
  const s = c.start({ direction: 'incoming', service: 'web', peer: 'p1' }, () => bytes)
  bytes.bytesIn = 1000
  bytes.bytesOut = 10
  let snap = c.snapshot()
  assert.deepEqual(
    { ...snap.incoming.services.web, lastUse: 0 },
    { bytesIn: 1000, bytesOut: 10, open: 1, ends: {}, lastUse: 0 },
  )
  s.end('reset', { bytesIn: 1500, bytesOut: 10 }, 'the far side reset the stream')
  s.end('ok') // a second end is ignored
  snap = c.snapshot()
  assert.equal(snap.incoming.total.bytesIn, 1500)
  assert.equal(snap.incoming.peers.p1?.open, 0)
  assert.deepEqual(snap.incoming.peers.p1?.ends, { reset: 1 })
  assert.equal(ends.length, 1)
  assert.equal(ends[0]?.reason, 'the far side reset the stream')
  assert.deepEqual(snap.outgoing.total, { bytesIn: 0, bytesOut: 0, open: 0, ends: {} })
})

it(`keeps at most ${MAX_TALLIES} peers apart per direction; the rest are counted as "${OTHER}"`, () => {
  const c = new StreamCounters()
  for (let i = 0; i < MAX_TALLIES + 10; i++) {
    c.never({ direction: 'incoming', service: 'web', peer: `peer-${i}` }, 'refused', 'not allowed')
  }
  const snap = c.snapshot()
  assert.equal(Object.keys(snap.incoming.peers).length, MAX_TALLIES + 1)
  assert.deepEqual(snap.incoming.peers[OTHER]?.ends, { refused: 10 })
  assert.deepEqual(snap.incoming.services.web?.ends, { refused: MAX_TALLIES + 10 })
  // a peer already counted apart stays apart
  c.never({ direction: 'incoming', service: 'web', peer: 'peer-0' }, 'refused', 'not allowed')
  assert.deepEqual(c.snapshot().incoming.peers['peer-0']?.ends, { refused: 2 })
})
