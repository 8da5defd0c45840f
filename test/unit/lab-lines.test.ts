/**
 * The NAT lab's JSON-lines channel (src/testing/natlab/lines.ts): one wait for several message types leaves nothing
 * behind, so a later `error` reaches the next wait instead of a forgotten one.
 */
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, it } from 'node:test'
import { lineChannel } from '../../src/testing/natlab/lines.ts'

describe('lab line channel', () => {
  it('a wait for several types takes the first of them, and a later error reaches the next wait', async () => {
    const input = new PassThrough()
    const chan = lineChannel(input, new PassThrough(), 'child')
    const first = chan.next(['leg', 'error'], 5_000)
    input.write('{"type":"leg","n":1}\n')
    assert.deepEqual(await first, { type: 'leg', n: 1 })
    const second = chan.next(['leg', 'error'], 5_000)
    input.write('{"type":"error","message":"the stream was reset"}\n')
    assert.deepEqual(await second, { type: 'error', message: 'the stream was reset' })
  })

  it('a message of another type stays queued for its own wait', async () => {
    const input = new PassThrough()
    const chan = lineChannel(input, new PassThrough(), 'child')
    input.write('{"type":"ready"}\n{"type":"leg","n":2}\n')
    assert.deepEqual(await chan.next(['leg', 'error'], 5_000), { type: 'leg', n: 2 })
    assert.deepEqual(await chan.next('ready', 5_000), { type: 'ready' })
  })

  it('names every awaited type when none comes in time', async () => {
    const chan = lineChannel(new PassThrough(), new PassThrough(), 'child')
    await assert.rejects(chan.next(['leg', 'error'], 50), {
      code: 'ERR_TIMEOUT',
      message: "child sent no 'leg' or 'error' message within 50 ms",
    })
  })
})
