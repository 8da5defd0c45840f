/**
 * The NAT matrix with real Warren nodes (short form; `npm run lab` runs the full one with repetitions): for each pair
 * of NAT kinds, A reaches B's service by ticket through B's home relay, the direct-path upgrade runs in the
 * background, and 64 MiB go on the path new streams take. The path must be what Warren reports AND what the routers'
 * counters show: direct means the bytes went router ↔ router, relayed means through the relay host. Round trips are
 * timed over the path taken; after an upgrade, a stream forced onto the relayed connection must still work.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NatKind } from '../../src/testing/natlab/index.ts'
import type { DirectPlan } from '../../src/traversal/upgrade/types.ts'
import { labSkip } from '../support/lab.ts'
import { runLabPair } from '../support/lab-pair-run.ts'

const BYTES = 64 * 1024 * 1024
/** Sent over the relayed connection after the upgrade, in the runs that went direct. */
const COMPARE_BYTES = 4 * 1024 * 1024
const PINGS = 5

/**
 * `direct`: whether the NATs allow a direct path. Any plan that makes one passes (the usual ones are a TCP
 * simultaneous open for cone × cone and TCP birthday probing for cone × symmetric, with the UDX plans behind them when
 * those miss); the plan taken is in the test's diagnostics.
 */
const CASES: { natA: NatKind; natB: NatKind; direct: boolean }[] = [
  { natA: 'cone', natB: 'cone', direct: true },
  { natA: 'cone', natB: 'symmetric', direct: true },
  { natA: 'symmetric', natB: 'symmetric', direct: false },
]

/** Every plan that makes a direct path. */
const DIRECT_PLANS: readonly DirectPlan[] = ['tcp', 'tcp-birthday', 'simultaneous', 'birthday-easy', 'birthday-hard']

describe('Warren nodes through two NATs: direct when the NATs allow, relayed when not', { skip: labSkip }, () => {
  for (const c of CASES) {
    it(`${c.natA} × ${c.natB}: 64 MiB intact, path ${c.direct ? 'direct' : 'relayed'} by Warren's report and by the routers' counters`, async (t) => {
      const run = await runLabPair({
        natA: c.natA,
        natB: c.natB,
        bytes: BYTES,
        waitDirectMs: 12_000,
        pings: PINGS,
        ...(c.direct ? { compareBytes: COMPARE_BYTES } : {}),
      })
      const r = run.result
      assert.equal(r.answer, `${BYTES} ${String(r.sha256)}`, 'B received every byte A sent')
      const path = r.path as { kind: string; addr: string; relay?: string }
      const rtt = c.direct ? run.rtt.direct : run.rtt.relayed
      assert.equal(rtt?.length, PINGS, `round trips over the ${path.kind} path: ${JSON.stringify(run.rtt)}`)
      assert.ok(
        rtt.every((ms) => ms > 0),
        'every round trip took time',
      )
      const plan = (r.upgrade as { plan?: string } | undefined)?.plan
      t.diagnostic(
        `${c.natA}×${c.natB}: ${path.kind} ${path.addr}; plan ${plan ?? '-'}; upgrade ${JSON.stringify(r.upgrade)}; ` +
          `time to direct ${r.toDirectMs === undefined ? '-' : `${Number(r.toDirectMs).toFixed(0)} ms`}; ` +
          `${run.main.mibps.toFixed(1)} MiB/s; router↔router ${run.directBytes} B; ` +
          `rtt ms ${Object.entries(run.rtt)
            .map(([k, v]) => `${k} ${v.map((ms) => ms.toFixed(2)).join(' ')}`)
            .join(', ')}; ` +
          run.legs.map((l) => `${l.over}: ${l.proven ?? 'unproven'} ${l.mibps.toFixed(1)} MiB/s`).join(', '),
      )
      if (c.direct) {
        assert.equal(
          path.kind,
          'direct',
          `Warren reports ${JSON.stringify(path)}; upgrade ${JSON.stringify(r.upgrade)}`,
        )
        assert.ok(DIRECT_PLANS.includes(plan as DirectPlan), `how the path was made: plan ${String(plan)}`)
        assert.ok(run.directBytes >= BYTES, `only ${run.directBytes} bytes went router ↔ router`)
        for (const relay of run.relays) {
          assert.ok(run.seen('ra', `out_${relay.host}`) < BYTES / 8, `A's bytes went through ${relay.host}`)
        }
        // the relayed connection stays open after the upgrade: a stream forced onto it still carries bytes intact
        const overRelay = run.legs.find((l) => l.over === 'relay')
        assert.ok(overRelay?.correct, `the stream over the relayed connection: ${JSON.stringify(overRelay?.result)}`)
        assert.equal(overRelay.proven, 'relayed', `${JSON.stringify(overRelay.viaRelay)} bytes via the relays`)
      } else {
        assert.equal(path.kind, 'relay')
        // B holds a reservation on both relays (home and standby): A's dial takes whichever circuit answers first
        const via = run.relays.find((x) => x.id === path.relay)
        assert.ok(via !== undefined, `relayed through ${String(path.relay)}, not one of the lab's relays`)
        assert.ok(run.directBytes < 1024 * 1024, `${run.directBytes} bytes went router ↔ router`)
        assert.ok(run.seen('ra', `out_${via.host}`) >= BYTES, `the bytes went through ${via.host}, the relay reported`)
        assert.equal((r.upgrade as { state?: string } | undefined)?.state, 'relayed', 'the upgrade gave up')
      }
    })
  }
})
