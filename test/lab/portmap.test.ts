/**
 * Port mapping in the NAT lab: routers running Debian's miniupnpd (nftables build, PCP/NAT-PMP and UPnP IGD on the LAN
 * side, src/testing/natlab/miniupnpd.ts). Two nodes behind symmetric NATs, which stay relayed without a mapping, get a
 * direct path through the mapped port; cone × symmetric goes direct without birthday probing; a router that refuses,
 * and one with no port mapper, leave the node punching and relaying as without port mapping. Every transfer is 64 MiB
 * with the SHA-256 of the whole stream checked, and the path is checked by the routers' counters.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Lab, NatKind, RouterName } from '../../src/testing/natlab/index.ts'
import { type MiniupnpdOptions, startMiniupnpd } from '../../src/testing/natlab/miniupnpd.ts'
import { labSkip } from '../support/lab.ts'
import { type LabPairRun, runLabPair } from '../support/lab-pair-run.ts'

const BYTES = 64 * 1024 * 1024

/** A setup for runLabPair: miniupnpd on the routers named, torn down after the run; their logs go to `logs`. */
function mappers(
  routers: Partial<Record<RouterName, MiniupnpdOptions>>,
  logs: string[],
): (lab: Lab) => Promise<() => Promise<void>> {
  return async (lab) => {
    const started = await Promise.all(Object.entries(routers).map(([r, o]) => startMiniupnpd(lab, r as RouterName, o)))
    return async () => {
      for (const u of started) logs.push(`miniupnpd on ${u.router}:\n${u.log()}`)
      await Promise.all(started.map((u) => u.stop()))
    }
  }
}

async function pair(
  natA: NatKind,
  natB: NatKind,
  routers: Partial<Record<RouterName, MiniupnpdOptions>>,
): Promise<LabPairRun> {
  const logs: string[] = []
  try {
    return await runLabPair({ natA, natB, bytes: BYTES, waitDirectMs: 12_000, pings: 3, setup: mappers(routers, logs) })
  } catch (err) {
    // what the routers' port mappers said is part of the failure
    throw new Error([(err as Error).message, ...logs].join('\n'), { cause: err })
  }
}

function describeRun(run: LabPairRun): string {
  const r = run.result
  return `path ${JSON.stringify(r.path)}; upgrade ${JSON.stringify(r.upgrade)}; to direct ${String(r.toDirectMs)} ms; router↔router ${run.directBytes} B; ${run.main.mibps.toFixed(1)} MiB/s`
}

function assertIntact(run: LabPairRun): void {
  const r = run.result
  assert.equal(r.answer, `${BYTES} ${String(r.sha256)}`, 'B received every byte A sent, SHA-256 equal')
}

function assertDirect(run: LabPairRun, plans: readonly string[]): void {
  const r = run.result
  assert.equal((r.path as { kind: string }).kind, 'direct', describeRun(run))
  const plan = (r.upgrade as { plan?: string } | undefined)?.plan
  assert.ok(plans.includes(String(plan)), `plan ${String(plan)}: ${describeRun(run)}`)
  assert.ok(run.directBytes >= BYTES, `only ${run.directBytes} bytes went router ↔ router`)
  for (const relay of run.relays) assert.ok(run.seen('ra', `out_${relay.host}`) < BYTES / 8, `bytes via ${relay.host}`)
}

function assertRelayed(run: LabPairRun): void {
  const r = run.result
  assert.equal((r.path as { kind: string }).kind, 'relay', describeRun(run))
  assert.ok(run.directBytes < 1024 * 1024, `${run.directBytes} bytes went router ↔ router`)
}

describe('port mapping through miniupnpd routers', { skip: labSkip }, () => {
  it('symmetric × symmetric, both routers mapping: direct through the mapped port, 64 MiB intact', async (t) => {
    const run = await pair('symmetric', 'symmetric', { ra: {}, rb: {} })
    t.diagnostic(describeRun(run))
    assertIntact(run)
    assertDirect(run, ['mapped'])
  })

  it('cone × symmetric, the symmetric side mapping: direct without birthday probing', async (t) => {
    const run = await pair('cone', 'symmetric', { rb: {} })
    t.diagnostic(describeRun(run))
    assertIntact(run)
    assertDirect(run, ['mapped'])
  })

  it('symmetric × symmetric, both routers refusing: relayed as without port mapping', async (t) => {
    const run = await pair('symmetric', 'symmetric', { ra: { refuse: true }, rb: { refuse: true } })
    t.diagnostic(describeRun(run))
    assertIntact(run)
    assertRelayed(run)
  })

  it('cone × cone, no port mapper on either router: punched as without port mapping', async (t) => {
    const run = await pair('cone', 'cone', {})
    t.diagnostic(describeRun(run))
    assertIntact(run)
    assertDirect(run, ['tcp', 'simultaneous', 'tcp-birthday', 'birthday-easy', 'birthday-hard'])
  })
})
