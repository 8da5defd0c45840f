/**
 * A real NAT rebinding on a direct path: the symmetric router (rb, in front of node B) forgets every flow (its whole
 * conntrack table flushed), which breaks the direct path and B's connections to its relays at once. What must happen,
 * each checked here from the nodes' own reports:
 * - A finds the direct path dead from TCP's unacknowledged data (tcp-path-watch.ts), not from a ping time-out;
 * - B holds a home and a standby reservation again (reserved over new connections) without anyone doing anything;
 * - a new connection carries 1 MiB intact (the time from the flush is a diagnostic here; `npm run lab:heal` measures
 *   it over 10 runs, docs/traversal.md has the figures), bounded by {@link LIMIT_MS} so that a hang fails;
 * - the direct path comes back (a re-punch through the new reservations).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eventually } from '../support/eventually.ts'
import { labSkip } from '../support/lab.ts'
import { createFaultPair, type FaultPair } from './fixtures/fault-pair.ts'
import { describeOutcome, underFault } from './fixtures/fault-run.ts'
import { flushConntrack } from './fixtures/faults.ts'

const MiB = 1024 * 1024
/** New connections must work within this bound (a hang, not a benchmark: the figures are in docs/traversal.md). */
const LIMIT_MS = 10_000
/** A home relay is checked every 10 s, each check given 4 s (src/relay/client/relay-entries.ts): one check and a second. */
const HOME_CHECK_MS = 15_000

describe('NAT rebinding on a direct path (cone × symmetric, two relays)', { skip: labSkip }, () => {
  let pair: FaultPair | undefined
  before(async () => {
    pair = await createFaultPair({
      natA: 'cone',
      natB: 'symmetric',
      relays: [
        { host: 'relay', allowB: true },
        { host: 'relay2', allowB: true },
      ],
      downloadBytes: MiB,
    })
  })
  after(async () => {
    await pair?.close()
  })

  it('the symmetric router flushes its conntrack table: reservations, relayed path and direct path come back', async (t) => {
    const p = pair!
    const probe = await p.a.ask({ op: 'probe', port: p.ports.probe, bytes: MiB, deadlineMs: 15_000 }, 'probed', 20_000)
    assert.equal(probe.ok, true, `first probe: ${JSON.stringify(probe)}`)
    const w = await p.a.ask({ op: 'wait', id: p.bId, kind: 'direct', timeoutMs: 20_000 }, 'waited', 25_000)
    assert.equal(w.ok, true, `no direct path: ${JSON.stringify(w)}`)
    const seenA = p.a.stderr.join('').length
    const seenB = p.b.stderr.join('').length
    const o = await underFault(p, {
      markAt: 0,
      deadlineMs: 30_000,
      recoverWithinMs: LIMIT_MS,
      fault: () => flushConntrack(p.lab, 'rb'),
    })
    const afterFault = Date.now()
    t.diagnostic(describeOutcome('conntrack of rb flushed', o))
    const logs = (): string => `\nA:\n${p.a.stderr.join('')}\nB:\n${p.b.stderr.join('')}`
    assert.notEqual(o.recoverMs, undefined, `no new connection worked within ${LIMIT_MS} ms${logs()}`)
    // A gives the direct path up (from the kernel's TCP state, or because B found it first and reset it); the log line
    // may follow the first new connection by a moment
    await eventually(() => /direct path lost \(/.test(p.a.stderr.join('').slice(seenA)), {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: `A logs the direct path lost${logs()}`,
    })
    // B reserves again by itself: a home and a standby, each on one of the two relays
    await eventually(
      async () => {
        const st = await p.b.ask({ op: 'status' }, 'status', 10_000)
        const relays = (st.relay as { relays: { state: string; reserved?: boolean }[] }).relays
        return relays.some((r) => r.state === 'home') && relays.some((r) => r.reserved === true)
      },
      { timeoutMs: 15_000, intervalMs: 250, message: 'B holds a home and a standby reservation again' },
    )
    // a home relay whose connection the flush broke is found dead by its next check and replaced; one whose
    // connection kept its mapping (the router gave the same external port again) answers that check and stays
    await eventually(
      () => {
        const since = p.b.stderr.join('').slice(seenB)
        if (/home relay \S+ lost \(/.test(since)) return /home relay \S+ \(rtt [\d.]+ ms\), chosen in/.test(since)
        return Date.now() - afterFault >= HOME_CHECK_MS
      },
      {
        timeoutMs: 2 * HOME_CHECK_MS,
        intervalMs: 250,
        message: `B's home relay is neither kept nor replaced${logs()}`,
      },
    )
    const back = await p.a.ask({ op: 'wait', id: p.bId, kind: 'direct', timeoutMs: 30_000 }, 'waited', 35_000)
    assert.equal(back.ok, true, `the direct path did not come back: ${JSON.stringify(back)}${logs()}`)
  })
})
