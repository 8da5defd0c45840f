/**
 * LazyTicker: rounds run while they find something to watch; after a round that finds nothing the timer is off
 * until wake(); stop() ends it for good. Waits are bounded by `eventually`, never asserted as timings.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LazyTicker } from '../../src/p2p/lazy-ticker.ts'
import { eventually } from '../support/eventually.ts'

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('LazyTicker', () => {
  it('ticks while rounds find something, sleeps after one that finds nothing, and ticks again on wake()', async () => {
    let things = 2
    let rounds = 0
    let wakes = 0
    const t = new LazyTicker(
      10,
      () => {
        rounds++
        return things > 0
      },
      () => wakes++,
    )
    assert.equal(t.sleeping, true, 'not started')
    t.wake()
    assert.equal(t.sleeping, true, 'wake() before start() does nothing')
    t.start()
    t.start()
    assert.equal(wakes, 1, 'a second start() is a no-op')
    try {
      await eventually(() => rounds >= 3 || undefined, { timeoutMs: 5_000, message: 'rounds while there is something' })
      assert.equal(t.sleeping, false)
      things = 0
      await eventually(() => t.sleeping || undefined, { timeoutMs: 5_000, message: 'asleep after an empty round' })
      const asleepAt = rounds
      await pause(60)
      assert.equal(rounds, asleepAt, 'no round while asleep')
      things = 1
      t.wake()
      t.wake()
      assert.equal(wakes, 2, 'one wake per sleep')
      await eventually(() => rounds > asleepAt || undefined, { timeoutMs: 5_000, message: 'rounds after wake()' })
      assert.equal(t.sleeping, false)
    } finally {
      t.stop()
    }
    assert.equal(t.sleeping, true)
    const stoppedAt = rounds
    t.wake()
    await pause(60)
    assert.equal(rounds, stoppedAt, 'wake() after stop() does nothing')
  })
})
