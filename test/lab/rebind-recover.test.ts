/**
 * A real NAT rebinding on a direct path: the symmetric router (rb, in front of node B) forgets every flow (its whole
 * conntrack table flushed), which breaks the direct path and B's connections to its relays at once. The relay
 * reservations and the direct path come back concurrently (relay-links.ts notices a relay connection that owes an
 * answer; the home relay fails over; a new dial re-punches), and new connections must work within
 * {@link TARGET_MS}.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { labSkip } from '../support/lab.ts'
import { createFaultPair, type FaultPair } from './fixtures/fault-pair.ts'
import { describeOutcome, underFault } from './fixtures/fault-run.ts'
import { flushConntrack } from './fixtures/faults.ts'

const MiB = 1024 * 1024
/** The target is 3 s; the bound leaves room for a loaded machine (this used to take 8.9-15.2 s). */
const TARGET_MS = 6_000

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

  it(`the symmetric router flushes its conntrack table: new connections work within ${TARGET_MS} ms`, async (t) => {
    const p = pair!
    const probe = await p.a.ask({ op: 'probe', port: p.ports.probe, bytes: MiB, deadlineMs: 15_000 }, 'probed', 20_000)
    assert.equal(probe.ok, true, `first probe: ${JSON.stringify(probe)}`)
    const w = await p.a.ask({ op: 'wait', id: p.bId, kind: 'direct', timeoutMs: 20_000 }, 'waited', 25_000)
    assert.equal(w.ok, true, `no direct path: ${JSON.stringify(w)}`)
    const o = await underFault(p, { markAt: 0, deadlineMs: 30_000, fault: () => flushConntrack(p.lab, 'rb') })
    t.diagnostic(describeOutcome('conntrack of rb flushed', o))
    const logs = `\nA:\n${p.a.stderr.join('')}\nB:\n${p.b.stderr.join('')}`
    assert.notEqual(o.recoverMs, undefined, `no new connection worked${logs}`)
    assert.ok(o.recoverMs! <= TARGET_MS, `reached again after ${o.recoverMs} ms${logs}`)
  })
})
