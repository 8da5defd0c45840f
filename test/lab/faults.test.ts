/**
 * Faults under load in the NAT lab, with real Warren nodes, real `warren relay` processes and real TCP services: an
 * upload and a download (64 MiB each, fault once each passed 16 MiB) through A's port forwards to B's services. Each
 * fault must end each transfer either with the whole data on both ends (SHA-256) or with an error on BOTH ends (the
 * client's socket errors, the service's socket is reset; a source that had already written its last byte and closed
 * cannot be told, as over any TCP connection, so there the client's error suffices), never a clean end with part of
 * the data, never a hang; and then a new connection must carry 1 MiB intact without anyone doing anything (the time
 * to that is reported).
 *
 * - relayed path (symmetric × symmetric, two relays): B's home relay killed (SIGKILL); B's home relay silently gone
 *   (every packet dropped, no RST); daemon B restarted;
 * - a relay's data limit reached (B not on its allow list, limit 4 MiB);
 * - direct path (cone × cone): the target service killed; both routers' NAT mappings of the direct flow flushed
 *   (conntrack entries deleted: the flow is picked up again with the same ports, whole data); daemon B restarted
 *   (stopped gracefully, started again); A's NAT mapping to B changed under the live flow (new public ports: an error
 *   on both ends).
 *
 * Every wait is bounded; every lab is torn down in every outcome.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it, type TestContext } from 'node:test'
import { labSkip } from '../support/lab.ts'
import { createFaultPair, type FaultPair, type RelaySpec } from './fixtures/fault-pair.ts'
import { describeOutcome, type FaultOutcome, underFault, verdict } from './fixtures/fault-run.ts'
import { flushMappingsToPeer, killProcess, rebindToPeer, silence, unsilence } from './fixtures/faults.ts'

const MiB = 1024 * 1024
const SIZE = 64 * MiB
const MARK = 16 * MiB
const DEADLINE_MS = 60_000

function usePair(natA: 'cone' | 'symmetric', natB: 'cone' | 'symmetric', relays: RelaySpec[], size = SIZE) {
  let pair: FaultPair | undefined
  before(async () => {
    pair = await createFaultPair({ natA, natB, relays, downloadBytes: size })
  })
  after(async () => {
    await pair?.close()
  })
  return () => pair!
}

/** Both directions honest, a new connection recovered; the figures go to the test's diagnostics. */
function check(t: TestContext, name: string, o: FaultOutcome, pair: FaultPair): void {
  t.diagnostic(describeOutcome(name, o))
  const logs = `\nA:\n${pair.a.stderr.join('')}\nB:\n${pair.b.stderr.join('')}`
  for (const d of [o.upload, o.download]) {
    if (d === undefined) continue
    const v = verdict(d)
    assert.ok(!v.startsWith('DISHONEST'), `${name}, ${d.kind}: ${v}\n${describeOutcome(name, o)}${logs}`)
  }
  assert.notEqual(o.recoverMs, undefined, `${name}: no new connection worked\n${describeOutcome(name, o)}${logs}`)
}

describe('faults on a relayed path (symmetric × symmetric, two relays)', { skip: labSkip }, () => {
  const pair = usePair('symmetric', 'symmetric', [
    { host: 'relay', allowB: true },
    { host: 'relay2', allowB: true },
  ])

  it("B's home relay killed (SIGKILL): both transfers end with an error on both ends, then a new connection works", async (t) => {
    const p = pair()
    const home = await p.home()
    const o = await underFault(p, {
      upload: SIZE,
      download: SIZE,
      markAt: MARK,
      deadlineMs: DEADLINE_MS,
      fault: async () => killProcess(home.proc.child),
    })
    check(t, `home relay ${home.host} killed`, o, p)
    await home.restart()
  })

  it("B's home relay silently gone (all its packets dropped): an error on both ends, not a hang", async (t) => {
    const p = pair()
    const home = await p.home()
    try {
      const o = await underFault(p, {
        upload: SIZE,
        download: SIZE,
        markAt: MARK,
        deadlineMs: DEADLINE_MS,
        fault: () => silence(p.lab, home.host),
      })
      check(t, `home relay ${home.host} silenced`, o, p)
    } finally {
      await unsilence(p.lab, home.host)
    }
  })

  it('daemon B restarted mid-upload and mid-download on the relayed path: an error on both ends, then a new connection works', async (t) => {
    const p = pair()
    const o = await underFault(p, {
      upload: SIZE,
      download: SIZE,
      markAt: MARK,
      deadlineMs: DEADLINE_MS,
      fault: () => p.restartB(),
    })
    check(t, 'daemon B restarted (relayed)', o, p)
  })
})

describe("a relay's data limit reached (B not on the relay's allow list, 4 MiB)", { skip: labSkip }, () => {
  const SMALL = 16 * MiB
  const pair = usePair(
    'symmetric',
    'symmetric',
    [{ host: 'relay', allowB: false, args: ['--data-limit', String(4 * MiB)] }],
    SMALL,
  )

  it('the relayed connection closes at the limit: an error on both ends, then a new connection works', async (t) => {
    const p = pair()
    const o = await underFault(p, {
      upload: SMALL,
      download: SMALL,
      markAt: MiB,
      deadlineMs: DEADLINE_MS,
      fault: async () => {},
    })
    check(t, 'data limit', o, p)
    // Both transfers share the relayed connection: whichever of them opens its stream after the other has
    // used up the limit fails on the client before reaching the service, which is as honest as an error on both ends.
    for (const d of [o.upload!, o.download!])
      assert.ok(
        [
          'error on both ends',
          'error on the client, before the stream reached the service',
          'error on the client, the service had handed over every byte',
        ].includes(verdict(d)),
        `${d.kind} went past the limit: ${verdict(d)}`,
      )
  })
})

describe('faults on a direct path (cone × cone)', { skip: labSkip }, () => {
  const pair = usePair('cone', 'cone', [{ host: 'relay', allowB: true }])
  const direct = async (p: FaultPair): Promise<void> => {
    const probe = await p.a.ask({ op: 'probe', port: p.ports.probe, bytes: MiB, deadlineMs: 15_000 }, 'probed', 20_000)
    assert.equal(probe.ok, true, `first probe: ${JSON.stringify(probe)}`)
    const w = await p.a.ask({ op: 'wait', id: p.bId, kind: 'direct', timeoutMs: 20_000 }, 'waited', 25_000)
    assert.equal(w.ok, true, `no direct path: ${JSON.stringify(w)}`)
  }

  it('the target service killed (SIGKILL): an error on the client, then a new connection works', async (t) => {
    const p = pair()
    await direct(p)
    const o = await underFault(p, {
      upload: SIZE,
      download: SIZE,
      markAt: MARK,
      deadlineMs: DEADLINE_MS,
      serviceGone: true,
      fault: async () => p.killService(),
      afterFault: () => p.startService(),
    })
    check(t, 'target service killed', o, p)
    for (const d of [o.upload!, o.download!])
      assert.notEqual(d.client.ending, 'end', `${d.kind}: the client saw a clean end`)
  })

  it("both routers forget the direct flow's NAT mappings under the live flow: the whole data or an error on both ends", async (t) => {
    const p = pair()
    await direct(p)
    const o = await underFault(p, {
      upload: SIZE,
      download: SIZE,
      markAt: MARK,
      deadlineMs: DEADLINE_MS,
      fault: async () => {
        await flushMappingsToPeer(p.lab, 'ra')
        await flushMappingsToPeer(p.lab, 'rb')
      },
    })
    check(t, 'direct-path mappings flushed on ra and rb', o, p)
  })

  it('daemon B restarted mid-upload and mid-download: an error on both ends, then a new connection works', async (t) => {
    const p = pair()
    await direct(p)
    const o = await underFault(p, {
      upload: SIZE,
      download: SIZE,
      markAt: MARK,
      deadlineMs: DEADLINE_MS,
      fault: () => p.restartB(),
    })
    check(t, 'daemon B restarted', o, p)
  })

  it("A's NAT mapping to B changed under the live direct flow: an error on both ends or the whole data", async (t) => {
    const p = pair()
    await direct(p)
    const o = await underFault(p, {
      upload: SIZE,
      download: SIZE,
      markAt: MARK,
      deadlineMs: DEADLINE_MS,
      fault: () => rebindToPeer(p.lab, 'ra', '20000-20999'),
    })
    check(t, "ra's mapping to rb changed", o, p)
  })
})
