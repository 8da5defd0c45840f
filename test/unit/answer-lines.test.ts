/**
 * Answer lines from a relay's or daemon's API: a client takes answers up to MAX_ANSWER_BYTES (a relay's status
 * lists every reservation: ~250 bytes each), while the servers keep refusing requests over MAX_LINE_BYTES.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { relayCall } from '../../src/client/relay-client.ts'
import { LineSplitter, MAX_ANSWER_BYTES, MAX_LINE_BYTES } from '../../src/daemon/api-protocol.ts'
import { resolveRelayHome } from '../../src/relay/server/home-dir.ts'

describe('API answer lines', () => {
  it('relayCall reads a 1.8 MB answer (a status with 12,000 reservations) whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-answer-'))
    const path = join(dir, 'relay.sock')
    const reservations = Array.from({ length: 12_000 }, (_, i) => ({
      node: `12D3KooW${String(i).padStart(44, 'x')}`,
      allowed: false,
      expiresAt: 1_796_609_038_000 + i,
      limits: { dataBytes: 1_048_576, durationSec: 120 },
    }))
    const answer = `${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { reservations } })}\n`
    assert.ok(answer.length > 1.5 * MAX_LINE_BYTES, `${answer.length} bytes`)
    const server = createServer((s) => {
      s.once('data', () => s.end(answer))
    })
    await new Promise<void>((r) => server.listen(path, r))
    try {
      const got = await relayCall(resolveRelayHome(dir), 'relay.status', { socket: path })
      assert.deepEqual(got, { reservations })
    } finally {
      server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a line longer than the limit is refused with its length in the message', () => {
    const requests = new LineSplitter()
    assert.throws(() => requests.push(Buffer.alloc(MAX_LINE_BYTES + 1, 97)), {
      message: `a line is longer than ${MAX_LINE_BYTES} bytes`,
    })
    const answers = new LineSplitter(MAX_ANSWER_BYTES)
    answers.push(Buffer.alloc(MAX_LINE_BYTES + 1, 97))
    answers.push(Buffer.from('\n'))
    assert.equal(answers.shift()?.length, MAX_LINE_BYTES + 1)
    const small = new LineSplitter(16)
    assert.throws(() => small.push(Buffer.alloc(17, 97)), { message: 'a line is longer than 16 bytes' })
  })
})
