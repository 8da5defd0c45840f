/**
 * A first upgrade that fails is tried again (cone × cone, real Warren nodes, one `warren relay`): UDP between the
 * routers is blocked from the start, so A's first punch toward B fails; the status says why and when the next try
 * runs. Once UDP passes again, the retry makes the path direct (Warren's report and router ra's counters agree).
 * Every wait is bounded; the lab is torn down by the hooks of test/support/lab.ts in every outcome.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FIRST_RETRIES, firstRetryDelay } from '../../src/traversal/upgrade/schedule.ts'
import { labSkip } from '../support/lab.ts'
import { BYTES, blockUdp, send, useLabPair as usePair } from '../support/lab-pair.ts'

describe('a failed first upgrade is tried again (cone × cone)', { skip: labSkip }, () => {
  const pair = usePair({ setup: (lab) => blockUdp(lab, true), expectDirect: false, udxOnly: true })

  it('stays relayed with the reason and the next try, and goes direct on the retry once UDP passes', async (t) => {
    const { lab, a, bId, ticket } = pair()
    let unblocked = false
    try {
      // the first upgrade fails while blocked: relayed, with a retry scheduled and no retry run yet
      let failed: Record<string, unknown> | undefined
      for (let i = 0; i < 400 && failed === undefined; i++) {
        const p = await a.ask({ op: 'peer', id: bId }, 'peer', 5_000)
        const u = p.upgrade as Record<string, unknown> | undefined
        if (u?.state === 'relayed' && u.retryAt !== undefined) failed = u
        else await new Promise((r) => setTimeout(r, 100))
      }
      assert.ok(failed !== undefined, 'no failed first upgrade reported within 40 s')
      assert.equal(failed.retry, undefined, 'the first try failed, not a retry')
      assert.match(String(failed.reason), /^no direct path to 12D3KooW\w+: /)
      const dueIn = Number(failed.retryAt) - Date.now()
      assert.ok(dueIn <= firstRetryDelay(1), `next try in ${dueIn} ms`)
      const relayed = await send(lab, a, ticket)
      assert.equal(relayed.path.kind, 'relay')
      assert.ok(relayed.relayed >= BYTES, `${relayed.relayed} bytes went through the relay`)
      t.diagnostic(`first upgrade failed: ${JSON.stringify(failed)}`)
      await blockUdp(lab, false)
      unblocked = true
    } finally {
      if (!unblocked) await blockUdp(lab, false)
    }
    const back = await a.ask(
      // retry 1 comes 1 s after the failure; if the relayed transfer outlasted that, retry 2 comes 30 s later
      { op: 'wait', id: bId, kind: 'direct', state: 'direct', timeoutMs: firstRetryDelay(2) + 20_000 },
      'waited',
      firstRetryDelay(2) + 25_000,
    )
    assert.equal(back.ok, true, `no direct path after unblocking: ${JSON.stringify(back)}\n${a.stderr.join('')}`)
    const u = back.upgrade as { retry?: number }
    assert.ok(u.retry !== undefined && u.retry >= 1 && u.retry <= FIRST_RETRIES, `direct on retry ${u.retry}`)
    const direct = await send(lab, a, ticket)
    assert.equal(direct.path.kind, 'direct')
    assert.ok(direct.direct >= BYTES, `${direct.direct} bytes went router ↔ router after the retry`)
    t.diagnostic(`direct after unblocking: ${JSON.stringify(back.upgrade)} (states ${JSON.stringify(back.states)})`)
  })
})
