/**
 * The router-mapped addresses in the direct-path upgrade's offer and answer (`portmap`) and the `unmapped` message
 * (src/traversal/punch/messages.ts), and which side dials them (src/traversal/upgrade/mapped-strategy.ts).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodePunchMessage, encodePunchMessage } from '../../src/traversal/punch/messages.ts'
import { mappedDialer } from '../../src/traversal/upgrade/mapped-strategy.ts'

const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
const ANSWER = { type: 'answer', mapped: { host: '198.18.0.3', port: 40000 }, nat: 'hard' }

describe('punch messages: portmap and unmapped', () => {
  it('carries the mapped addresses both ways', () => {
    const portmap = ['/ip4/198.18.0.3/tcp/4781', '/ip4/198.18.0.3/udp/50412']
    const msg = decodePunchMessage(encodePunchMessage({ ...ANSWER, portmap } as never))
    assert.deepEqual(msg, { ...ANSWER, portmap })
    assert.deepEqual(decodePunchMessage(enc({ ...ANSWER, portmap: [] })), ANSWER, 'an empty list is no list')
    assert.deepEqual(decodePunchMessage(enc({ type: 'unmapped', reason: 'x'.repeat(400) })), {
      type: 'unmapped',
      reason: 'x'.repeat(300),
    })
  })

  it('rejects malformed lists with the exact error', () => {
    const bad = (portmap: unknown, what: string): void =>
      assert.throws(
        () => decodePunchMessage(enc({ ...ANSWER, portmap })),
        (err: Error) => err.message === `the peer sent a malformed /warren/punch/1.0.0 message: ${what}`,
      )
    bad('x', 'portmap must be a list of at most 4 addresses')
    bad(
      ['/ip4/1.2.3.4/tcp/1', '/ip4/1.2.3.4/tcp/2', '/ip4/1.2.3.4/tcp/3', '/ip4/1.2.3.4/tcp/4', '/ip4/1.2.3.4/tcp/5'],
      'portmap must be a list of at most 4 addresses',
    )
    bad(['/dns4/example.com/tcp/1'], 'portmap address "/dns4/example.com/tcp/1"')
    bad(['/ip4/1.2.3.4/tcp/1/p2p/QmX'], 'portmap address "/ip4/1.2.3.4/tcp/1/p2p/QmX"')
    bad([7], 'portmap address 7')
  })

  it('both sides agree on who dials', () => {
    const m = ['/ip4/198.18.0.2/tcp/4781']
    // both mapped: the initiator dials
    assert.equal(mappedDialer(true, m, m), true)
    assert.equal(mappedDialer(false, m, m), false)
    // only the responder mapped: the initiator dials it
    assert.equal(mappedDialer(true, [], m), true)
    assert.equal(mappedDialer(false, m, []), false)
    // only the initiator mapped: the responder dials it
    assert.equal(mappedDialer(true, m, []), false)
    assert.equal(mappedDialer(false, [], m), true)
    // none mapped: nobody
    assert.equal(mappedDialer(true, [], []), false)
    assert.equal(mappedDialer(false, [], []), false)
  })
})
