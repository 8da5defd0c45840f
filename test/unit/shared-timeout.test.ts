/**
 * Shared time-out signals (src/p2p/shared-timeout.ts): calls within the same second get one signal, a later call a
 * new one, each duration its own; a signal aborts with a TimeoutError no sooner than asked and at most a second late.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SHARE_MS, sharedTimeout } from '../../src/p2p/shared-timeout.ts'

describe('sharedTimeout', () => {
  it('hands one signal to the calls of one second, a new one after, and one per duration', () => {
    const t0 = 1_000_000
    const a = sharedTimeout(30_000, t0)
    assert.equal(sharedTimeout(30_000, t0 + SHARE_MS - 1), a)
    assert.notEqual(sharedTimeout(40_000, t0), a)
    const b = sharedTimeout(30_000, t0 + SHARE_MS)
    assert.notEqual(b, a)
    assert.equal(sharedTimeout(30_000, t0 + SHARE_MS + 1), b)
    // a clock that went back does not get a signal made for a later time
    assert.notEqual(sharedTimeout(30_000, t0 - 5_000), b)
    assert.equal(a.aborted, false)
  })

  it('aborts with a TimeoutError between the time asked and a second later', async () => {
    const start = performance.now()
    const signal = sharedTimeout(50)
    const reason = await new Promise<unknown>((resolve) =>
      signal.addEventListener('abort', () => resolve(signal.reason)),
    )
    const took = performance.now() - start
    assert.equal((reason as Error).name, 'TimeoutError')
    assert.ok(took >= 49, `aborted after ${took} ms`)
    assert.ok(took < 50 + SHARE_MS + 500, `aborted after ${took} ms`)
    assert.notEqual(sharedTimeout(50), signal, 'an aborted signal is not handed out again')
  })
})
