/**
 * Circuits go to the connection a node last reserved over (src/relay/server/reserved-over.ts), and a STOP waiting on
 * an older connection moves to the new one the moment the node reserves again over it. The connections here are plain
 * objects with a status: the class only compares and hands them to the given STOP function.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Connection } from '@libp2p/interface'
import { ReservedConnections } from '../../src/relay/server/reserved-over.ts'

const conn = (name: string, status = 'open'): Connection => ({ name, status }) as unknown as Connection

describe('ReservedConnections', () => {
  it('prefers the connection the node last reserved over while it is open', () => {
    const over = new ReservedConnections()
    const oldest = conn('oldest')
    const fresh = conn('fresh')
    assert.equal(over.connectionFor('n', oldest), oldest)
    over.reserved('n', fresh)
    assert.equal(over.connectionFor('n', oldest), fresh)
    assert.equal(over.connectionFor('n', conn('x')), fresh)
    over.reserved('n', conn('closed', 'closed'))
    assert.equal(over.connectionFor('n', oldest), oldest)
    over.reserved('n', fresh)
    over.forget('n')
    assert.equal(over.connectionFor('n', oldest), oldest)
  })

  it('moves a STOP that waits on a dead connection to the one the node reserves over next', async () => {
    const over = new ReservedConnections()
    const dead = conn('dead')
    const fresh = conn('fresh')
    const tried: string[] = []
    const result = over.stopVia('n', dead, undefined, async (c, signal) => {
      tried.push((c as unknown as { name: string }).name)
      if (c === dead) {
        // a dead connection never answers: only the abort ends the wait
        await new Promise((_, reject) => signal!.addEventListener('abort', () => reject(signal!.reason)))
      }
      return `stream on ${(c as unknown as { name: string }).name}`
    })
    over.reserved('n', dead) // a renewal over the same connection moves nothing
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(tried, ['dead'])
    over.reserved('n', fresh)
    assert.equal(await result, 'stream on fresh')
    assert.deepEqual(tried, ['dead', 'fresh'])
  })

  it('keeps the error of a STOP that fails with no new reservation, and the deadline of the hop', async () => {
    const over = new ReservedConnections()
    await assert.rejects(
      over.stopVia('n', conn('a'), undefined, async () => {
        throw new Error('stop refused')
      }),
      /stop refused/,
    )
    const deadline = AbortSignal.timeout(50)
    await assert.rejects(
      over.stopVia('n', conn('a'), deadline, (_c, signal) => {
        return new Promise((_, reject) => signal!.addEventListener('abort', () => reject(new Error('hop timed out'))))
      }),
      /hop timed out/,
    )
  })
})
