/**
 * The standby reservation is Warren's to keep: node B holds its home reservation on one relay and a standby one on the
 * other. The standby relay's process is killed and started again (same id, same address); B must notice and reserve
 * on it again by itself, while its home relay stays home (no failover), and the restarted relay itself must list B's
 * reservation (`warren relay status`, read over its control socket).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { relayCall } from '../../src/client/relay-client.ts'
import type { HomeRelayStatus } from '../../src/relay/client/home-relay.ts'
import { resolveRelayHome } from '../../src/relay/server/home-dir.ts'
import { eventually } from '../support/eventually.ts'
import { labSkip } from '../support/lab.ts'
import { createFaultPair, type FaultPair, type LabRelay } from './fixtures/fault-pair.ts'
import { killProcess } from './fixtures/faults.ts'

const relayStatusOf = async (p: FaultPair): Promise<HomeRelayStatus> =>
  (await p.b.ask({ op: 'status' }, 'status', 10_000)).relay as HomeRelayStatus

/** Whether the relay process lists a reservation of `node`. */
async function relayHolds(relay: LabRelay, node: string): Promise<boolean> {
  const st = await relayCall(resolveRelayHome(relay.home), 'relay.status', { timeoutMs: 5_000 })
  return st.reservations.some((r) => r.node === node)
}

describe('standby reservation kept by Warren (two relays)', { skip: labSkip }, () => {
  let pair: FaultPair | undefined
  before(async () => {
    pair = await createFaultPair({
      natA: 'cone',
      natB: 'symmetric',
      relays: [
        { host: 'relay', allowB: true },
        { host: 'relay2', allowB: true },
      ],
      downloadBytes: 1024 * 1024,
    })
  })
  after(async () => {
    await pair?.close()
  })

  it('the standby relay restarted: B reserves on it again and keeps its home relay', async () => {
    const p = pair!
    const first = await eventually(
      'a home and a standby reservation on B',
      async () => {
        const st = await relayStatusOf(p)
        const standby = st.relays.find((e) => e.reserved === true)
        return st.home !== null && standby !== undefined ? { home: st.home, standby: standby.id } : undefined
      },
      20_000,
    )
    assert.notEqual(first.home, first.standby)
    const standby = p.relays.find((r) => r.id === first.standby)!
    assert.equal(
      await relayHolds(standby, p.bId),
      true,
      'the standby relay lists no reservation of B before the restart',
    )
    const warnedBefore = p.b.stderr.join('')

    killProcess(standby.proc.child)
    await standby.restart()
    // the restarted relay starts with no reservation at all: B must make one again without being asked
    await eventually('B reserved on the restarted standby relay again', () => relayHolds(standby, p.bId), 20_000)
    const after = await eventually(
      'B reports the standby reservation again',
      async () => {
        const st = await relayStatusOf(p)
        const entry = st.relays.find((e) => e.id === first.standby)
        return entry?.reserved === true ? st : undefined
      },
      10_000,
    )
    assert.equal(after.home, first.home, 'the home relay changed although it never failed')
    const entry = after.relays.find((e) => e.id === first.standby)!
    assert.equal(entry.state, 'standby')
    assert.ok((entry.expiresAt ?? 0) > Date.now(), `no expiry for the standby reservation: ${JSON.stringify(entry)}`)
    const logged = p.b.stderr.join('').slice(warnedBefore.length)
    assert.doesNotMatch(logged, /home relay .* lost/, logged)
    assert.match(logged, new RegExp(`standby reservation on relay ${first.standby} lost`), logged)
  })
})
