/**
 * Two memory settings of a node: the shared silent libp2p logger (one logger object for every component and stream
 * unless DEBUG is set) and the idle trim (malloc_trim after a busy interval followed by quiet ones, a bounded
 * number of times, never while busy).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startIdleTrim } from '../../src/daemon/idle-trim.ts'
import { quietLogger } from '../../src/p2p/quiet-logger.ts'
import { eventually } from '../support/eventually.ts'

describe('quietLogger', () => {
  it('without DEBUG: one silent logger for every component and scope', () => {
    const { logger } = quietLogger({})
    assert.ok(logger !== undefined)
    const a = logger.forComponent('libp2p:yamux')
    const b = logger.forComponent('libp2p:tcp')
    assert.equal(a, b)
    assert.equal(a.enabled, false)
    assert.equal(a.newScope('stream:1'), a)
    assert.equal(a('ignored %s', 'x'), undefined)
    assert.equal(a.error('ignored'), undefined)
    assert.equal(a.trace('ignored'), undefined)
    assert.deepEqual(quietLogger({ DEBUG: '' }), { logger })
  })

  it('with DEBUG set: libp2p’s own logger (nothing passed)', () => {
    assert.deepEqual(quietLogger({ DEBUG: 'libp2p:*' }), {})
  })
})

/** Keeps the CPU busy for `ms`. */
function spin(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {}
}

describe('startIdleTrim', { skip: process.platform === 'linux' ? false : 'glibc on Linux only' }, () => {
  it('trims on the quiet intervals after a busy one, at most quietTicks times', async () => {
    const trims: number[] = []
    const t = startIdleTrim({
      intervalMs: 100,
      busyShare: 0.3,
      quietShare: 0.2,
      quietTicks: 2,
      onTrim: (r) => trims.push(r),
    })
    try {
      await new Promise((r) => setTimeout(r, 250))
      assert.equal(trims.length, 0, 'no trim without a busy interval first')
      spin(150)
      await eventually(() => trims.length === 2 || undefined, {
        timeoutMs: 5_000,
        message: 'two trims after the burst',
      })
      await new Promise((r) => setTimeout(r, 400))
      assert.equal(trims.length, 2, 'no more than quietTicks trims per burst')
      for (const r of trims) assert.ok(r === 0 || r === 1)
    } finally {
      t.stop()
    }
  })
})
