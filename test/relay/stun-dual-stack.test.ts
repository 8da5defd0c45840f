/**
 * A STUN responder on a dual-stack socket (`stun.host: "::"`) sees IPv4 clients as ::ffff:a.b.c.d. One such
 * Binding request used to throw inside the socket's handler and kill the relay; it is answered with the client's
 * IPv4 address, and the responder keeps answering.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import {
  bindingRequest,
  decodeStun,
  encodeStun,
  mappedAddress,
  type StunResponder,
  startStunResponder,
} from '../../src/stun/codec.ts'

describe('STUN responder on "::"', () => {
  let r: StunResponder
  before(async () => {
    r = await startStunResponder({ host: '::', port: 0 })
  })
  after(async () => {
    await r?.close()
  })

  it('answers IPv4 clients with their IPv4 address, again and again', async () => {
    const s = createSocket('udp4')
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
    try {
      for (let i = 0; i < 3; i++) {
        const req = bindingRequest()
        const answer = new Promise<Buffer>((resolve) => s.once('message', resolve))
        s.send(encodeStun(req), r.address.port, '127.0.0.1')
        const res = decodeStun(await answer)
        assert.ok(res !== undefined)
        assert.deepEqual(res.transactionId, req.transactionId)
        assert.deepEqual(mappedAddress(res), { host: '127.0.0.1', port: s.address().port })
      }
      assert.equal(r.answered, 3)
    } finally {
      s.close()
    }
  })
})
