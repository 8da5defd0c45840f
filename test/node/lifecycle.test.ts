/**
 * The lifecycle helper (src/lifecycle.ts): parts start in order and stop in reverse; a part that fails to start
 * makes the ones already started stop, in reverse, before its error is rethrown; every part is asked to stop even
 * when some fail, and their errors come back together.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { part, type Startable, startInOrder, stopInReverse } from '../../src/lifecycle.ts'

/** A part that records its start and stop in `log`, failing where told. */
function recorder(name: string, log: string[], fail: { start?: boolean; stop?: boolean } = {}): Startable {
  return {
    start: async () => {
      await new Promise((resolve) => setImmediate(resolve))
      if (fail.start === true) throw new Error(`${name} failed to start`)
      log.push(`start ${name}`)
    },
    stop: async () => {
      await new Promise((resolve) => setImmediate(resolve))
      log.push(`stop ${name}`)
      if (fail.stop === true) throw new Error(`${name} failed to stop`)
    },
  }
}

test('parts start in order and stop in reverse order', async () => {
  const log: string[] = []
  const parts = await startInOrder([recorder('a', log), recorder('b', log), recorder('c', log)])
  assert.deepEqual(log, ['start a', 'start b', 'start c'])
  await parts.stop()
  assert.deepEqual(log, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a'])
  await parts.stop()
  assert.equal(log.length, 6, 'a second stop stops nothing again')
})

test('a part failing to start stops the started ones in reverse and rethrows; later parts never start', async () => {
  const log: string[] = []
  const parts = [recorder('a', log), recorder('b', log), recorder('c', log, { start: true }), recorder('d', log)]
  await assert.rejects(startInOrder(parts), { message: 'c failed to start' })
  assert.deepEqual(log, ['start a', 'start b', 'stop b', 'stop a'])
})

test('a failed start rethrows its own error even when a started part fails to stop', async () => {
  const log: string[] = []
  const parts = [recorder('a', log), recorder('b', log, { stop: true }), recorder('c', log, { start: true })]
  await assert.rejects(startInOrder(parts), { message: 'c failed to start' })
  assert.deepEqual(log, ['start a', 'start b', 'stop b', 'stop a'])
})

test('stop asks every part and collects the errors', async () => {
  const log: string[] = []
  const one = await startInOrder([recorder('a', log), recorder('b', log, { stop: true }), recorder('c', log)])
  await assert.rejects(one.stop(), { message: 'b failed to stop' })
  assert.deepEqual(log.slice(3), ['stop c', 'stop b', 'stop a'])

  log.length = 0
  const two = await startInOrder([
    recorder('a', log, { stop: true }),
    recorder('b', log),
    recorder('c', log, { stop: true }),
  ])
  await assert.rejects(two.stop(), (err: unknown) => {
    assert.ok(err instanceof AggregateError)
    assert.deepEqual(
      err.errors.map((e: Error) => e.message),
      ['c failed to stop', 'a failed to stop'],
    )
    return true
  })
  assert.deepEqual(log.slice(3), ['stop c', 'stop b', 'stop a'])
})

test('part() adapts other verbs: a sync stop, a factory start, nothing to stop', async () => {
  const log: string[] = []
  let made: { close(): void } | undefined
  const parts = await startInOrder([
    part({ start: () => log.push('start sync') }),
    part({
      start: async () => {
        made = { close: () => log.push('close made') }
      },
      stop: () => made?.close(),
    }),
    part({}),
  ])
  await parts.stop()
  assert.deepEqual(log, ['start sync', 'close made'])
  await stopInReverse([]) // nothing to stop: resolves
})
