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

it('gives streams of the same labels the same kept labels, and counts right past its cache of labels', () => {
  const c = new StreamCounters()
  const ends: StreamEnd[] = []
  c.listen({ ended: (e) => ends.push(e) })
  const open = (peer: string, service = 'web') => c.start({ direction: 'incoming', service, peer })
  open('a').end('ok')
  open('a').end('reset')
  open('a', 'ssh').end('ok')
  assert.equal(ends[0]!.counted, ends[1]!.counted, 'the same labels, the same object')
  assert.notEqual(ends[0]!.counted, ends[2]!.counted)
  // more distinct peers than the cache holds (4 × MAX_TALLIES): it is emptied and refilled, the tallies stay
  const distinct = 4 * MAX_TALLIES + 100
  for (let i = 0; i < distinct; i++) open(`peer-${i}`).end('ok')
  open('a').end('ok')
  open('peer-1').end('ok')
  open(`peer-${distinct - 1}`).end('ok')
  const snap = c.snapshot()
  assert.deepEqual(snap.incoming.peers.a?.ends, { ok: 3, reset: 1 }) // its web and ssh streams
  assert.deepEqual(snap.incoming.peers['peer-1']?.ends, { ok: 2 })
  // 'a' and peer-0 … peer-1022 are counted apart; every later peer as "other"
  assert.equal(Object.keys(snap.incoming.peers).length, MAX_TALLIES + 1)
  assert.deepEqual(snap.incoming.peers[OTHER]?.ends, { ok: distinct - (MAX_TALLIES - 1) + 1 })
  assert.deepEqual(snap.incoming.services.web?.ends, { ok: distinct + 4, reset: 1 })
  assert.equal(snap.incoming.total.open, 0)
})
