/**
 * One port-mapping attempt against real routers in the NAT lab (Debian's miniupnpd, PCP/NAT-PMP/UPnP IGD): a router
 * that answers the probe but refuses every mapping request (a `deny` rule for everyone: each protocol answers with an
 * error) ends in one attempt with each protocol's outcome in the status and nothing held; a router that maps does so
 * by PCP and deletes on stop. The attempt reports its duration against its budget (`attemptMs`, `budgetMs`); how long
 * it takes is measured by `npm run lab`, not asserted here (a loaded machine stretches it).
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { reap } from '../../src/testing/natlab/lines.ts'
import { type Miniupnpd, startMiniupnpd } from '../../src/testing/natlab/miniupnpd.ts'
import type { PortMapStatus } from '../../src/traversal/portmap/types.ts'
import { labSkip } from '../support/lab.ts'

const PROBE = resolve('test/lab/fixtures/portmap-probe.ts')

/** One attempt of a PortMapper on `host`: its status once the attempt ended, and its exit status. */
async function attempt(lab: Lab, host: string): Promise<{ status: PortMapStatus; code: number | null }> {
  const child: ChildProcess = lab.spawnNode(host, PROBE, ['40123'])
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  await reap(child, 30_000)
  const line = out.split('\n').find((l) => l.startsWith('{'))
  assert.ok(line !== undefined, `no status from ${host}: ${out}${err}`)
  return { status: JSON.parse(line) as PortMapStatus, code: child.exitCode }
}

describe('one port-mapping attempt against miniupnpd', { skip: labSkip }, () => {
  let lab: Lab
  const routers: Miniupnpd[] = []

  before(async () => {
    lab = await createLab({ natA: 'symmetric', natB: 'symmetric' })
    routers.push(await startMiniupnpd(lab, 'ra', { refuse: true }), await startMiniupnpd(lab, 'rb'))
  })

  after(async () => {
    await Promise.all(routers.map((r) => r.stop()))
    await lab?.close()
  })

  it('a router that answers the probe but refuses every mapping: one attempt, each protocol told, nothing held', async (t) => {
    const { status, code } = await attempt(lab, 'a')
    t.diagnostic(JSON.stringify(status))
    assert.equal(code, 0)
    assert.equal(status.state, 'none')
    assert.deepEqual(status.mappings, [])
    assert.equal(status.budgetMs, 2000)
    assert.ok(typeof status.attemptMs === 'number' && status.attemptMs >= 0, 'the attempt reports its duration')
    for (const p of ['pcp', 'nat-pmp', 'upnp'] as const) {
      const outcome = status.probes[p]
      assert.ok(outcome !== undefined && outcome !== 'ok', `${p}: ${String(outcome)}`)
      assert.ok(status.reason?.includes(`${p}: ${outcome}`), `the reason names ${p}: ${status.reason}`)
    }
    assert.deepEqual(await routers[0]!.mappings(), [], 'the refusing router holds nothing')
  })

  it('a router that maps does so by PCP, and the mapping is deleted on stop', async (t) => {
    const { status, code } = await attempt(lab, 'b')
    t.diagnostic(JSON.stringify(status))
    assert.equal(code, 0)
    assert.equal(status.state, 'mapped')
    assert.equal(status.protocol, 'pcp')
    assert.deepEqual(
      status.mappings.map((m) => `${m.transport} ${m.internal}`),
      [`tcp ${lab.address('b')}:40123`, `udp ${lab.address('b')}:40123`],
    )
    assert.ok(typeof status.attemptMs === 'number' && status.attemptMs >= 0, 'the attempt reports its duration')
    assert.equal(status.probes.pcp, 'ok')
    assert.deepEqual(await routers[1]!.mappings(), [], 'deleted when the mapper stopped')
  })
})
