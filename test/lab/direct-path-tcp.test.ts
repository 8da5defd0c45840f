/**
 * TCP direct paths (cone × cone, real Warren nodes, one `warren relay` with STUN over UDP and TCP):
 *
 * - the first upgrade is a TCP simultaneous open: Warren reports a `/tcp/` path made by plan `tcp`, and the bytes go
 *   router ↔ router, not through the relay;
 * - when TCP between the routers stops passing, the TCP path watch (tcp-path-watch.ts) finds the path dead within
 *   seconds, new streams take the relay, and the re-punch, whose TCP attempt is blocked, makes
 *   a UDX path instead.
 *
 * Every wait is bounded; the lab is torn down by the hooks of test/support/lab.ts in every outcome.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TCP_CHECK_MS, TCP_PING_TIMEOUT_MS } from '../../src/traversal/upgrade/tcp-path-watch.ts'
import { labSkip } from '../support/lab.ts'
import { BYTES, block, send, useLabPair as usePair } from '../support/lab-pair.ts'

describe('a TCP direct path (cone × cone)', { skip: labSkip }, () => {
  const pair = usePair()

  it('is made by a TCP simultaneous open and carries the bytes router to router', async (t) => {
    const { lab, a, b, aId, bId, ticket, toDirectMs } = pair()
    const p = await a.ask({ op: 'peer', id: bId }, 'peer', 5_000)
    assert.equal((p.upgrade as { plan?: string }).plan, 'tcp', `upgrade ${JSON.stringify(p.upgrade)}`)
    // the side that answered the punch finishes too (it once waited forever for its inbound connection's event)
    const q = await b.ask({ op: 'wait', id: aId, kind: 'direct', state: 'direct', timeoutMs: 5_000 }, 'waited', 10_000)
    assert.equal(q.ok, true, `B reports ${JSON.stringify(q)}`)
    assert.equal((q.upgrade as { plan?: string }).plan, 'tcp')
    const r = await send(lab, a, ticket)
    assert.equal(r.path.kind, 'direct')
    assert.match(r.path.addr, /^\/ip4\/198\.18\.0\.\d+\/tcp\/\d+/)
    assert.ok(r.direct >= BYTES, `${r.direct} bytes went router ↔ router`)
    assert.ok(r.relayed < BYTES / 8, `${r.relayed} bytes went through the relay`)
    t.diagnostic(`direct over ${r.path.addr} ${toDirectMs.toFixed(0)} ms after reaching B; ${r.mibps.toFixed(1)} MiB/s`)
  })

  it('is found dead when TCP stops passing: the relay carries new streams and the re-punch goes direct over UDX', async (t) => {
    const { lab, a, bId, ticket } = pair()
    const started = performance.now()
    await block(lab, 'tcp', true)
    try {
      const lost = await a.ask({ op: 'wait', id: bId, kind: 'relay', timeoutMs: 15_000 }, 'waited', 20_000)
      const detectMs = performance.now() - started
      assert.equal(lost.ok, true, `A still reports ${JSON.stringify(lost)} 15 s after TCP was blocked`)
      // one idle check, one unanswered ping, and the polling: well under three check intervals past the ping time-out
      assert.ok(detectMs < TCP_PING_TIMEOUT_MS + 3 * TCP_CHECK_MS + 2_000, `lost after ${detectMs.toFixed(0)} ms`)
      const back = await a.ask(
        { op: 'wait', id: bId, kind: 'direct', state: 'direct', timeoutMs: 20_000 },
        'waited',
        25_000,
      )
      assert.equal(back.ok, true, `no direct path again: ${JSON.stringify(back)}\n${a.stderr.join('')}`)
      const path = back.path as { addr: string }
      assert.match(path.addr, /\/udp\//, 'with TCP blocked the re-punch made a UDX path')
      const u = back.upgrade as { lost?: number; plan?: string }
      assert.equal(u.lost, 1, 'the status counts the lost path')
      assert.notEqual(u.plan, 'tcp')
      const again = await send(lab, a, ticket)
      assert.equal(again.path.kind, 'direct')
      assert.ok(again.direct >= BYTES, `${again.direct} bytes went router ↔ router over UDX`)
      t.diagnostic(
        `relayed ${detectMs.toFixed(0)} ms after TCP was blocked (${JSON.stringify(lost.states)}); direct again ` +
          `over ${path.addr} (${JSON.stringify(back.states)}); ${again.mibps.toFixed(1)} MiB/s over UDX`,
      )
    } finally {
      await block(lab, 'tcp', false)
    }
  })
})
