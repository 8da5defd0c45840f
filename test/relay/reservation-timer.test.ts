/**
 * The reservation timer Warren puts in place of libp2p's when a reservation is refreshed, against the real
 * `retimeable-signal` that @libp2p/circuit-relay-v2 4.2.13 uses: the stock signal, reset twice, still fires at the
 * first reset's deadline (when this stops being true upstream, the workaround in src/relay/server/hooks.ts can go).
 */
import assert from 'node:assert/strict'
import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, it } from 'node:test'
import { retimeableSignal } from 'retimeable-signal'
import { reservationTimer } from '../../src/relay/server/reservation-timer.ts'
import { eventually } from '../support/eventually.ts'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('a reservation timer moved twice', () => {
  it('stock retimeable-signal: the first reset still fires (the upstream behaviour Warren works around)', async () => {
    const signal = retimeableSignal(300)
    const start = Date.now()
    await sleep(100)
    signal.reset(300) // deadline 400 ms
    await sleep(200)
    signal.reset(300) // deadline 600 ms, but the timer of the first reset is still attached
    await eventually(() => signal.aborted, { timeoutMs: 2_000, intervalMs: 10, message: 'the stock signal aborts' })
    const at = Date.now() - start
    assert.ok(at < 550, `upstream now honours the second reset (aborted at ${at} ms): remove reservation-timer.ts`)
  })

  it("Warren's timer fires once, at the latest reset's deadline", async () => {
    let fired = 0
    const start = Date.now()
    const timer = reservationTimer(300, () => fired++)
    await sleep(100)
    timer.reset(300)
    await sleep(200)
    timer.reset(300)
    await eventually(() => fired > 0, { timeoutMs: 2_000, intervalMs: 10, message: 'the timer fires' })
    const at = Date.now() - start
    assert.ok(at >= 590, `fired at ${at} ms, before the latest deadline`)
    await sleep(100)
    assert.equal(fired, 1)
  })

  it('a cleared timer never fires', async () => {
    let fired = 0
    const timer = reservationTimer(50, () => fired++)
    timer.clear()
    await sleep(150) // longer than the timer: a stopped timer is checked by waiting past its deadline
    assert.equal(fired, 0)
  })

  it('does not keep the async context it was armed or moved in', async () => {
    const als = new AsyncLocalStorage<string>()
    const seen: (string | undefined)[] = []
    const timer = als.run('reserving', () => reservationTimer(30, () => seen.push(als.getStore())))
    als.run('refreshing', () => timer.reset(40))
    await eventually(() => seen.length > 0, { timeoutMs: 2_000, intervalMs: 10, message: 'the timer fires' })
    assert.deepEqual(seen, [undefined])
  })
})
