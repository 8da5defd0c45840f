import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { fromDgram } from '../../src/p2p/udx/packet-socket.ts'
import { stunBinding } from '../../src/stun/client.ts'
import {
  ATTR_XOR_MAPPED_ADDRESS,
  answerStun,
  bindingRequest,
  decodeAddress,
  decodeStun,
  encodeAddress,
  encodeStun,
  isStunMessage,
  mappedAddress,
  STUN_BINDING_ERROR,
  STUN_BINDING_SUCCESS,
  type StunResponder,
  startStunResponder,
} from '../../src/stun/codec.ts'
import { startStunTcpResponder } from '../../src/stun/tcp-server.ts'
import { checkStopsReading } from '../support/transfer.ts'

function udp(): Promise<Socket> {
  const s = createSocket('udp4')
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)))
}

function nextMessage(s: Socket, ms: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      s.off('message', on)
      resolve(undefined)
    }, ms)
    const on = (m: Buffer): void => {
      clearTimeout(t)
      s.off('message', on)
      resolve(m)
    }
    s.on('message', on)
  })
}

describe('STUN codec', () => {
  it('round-trips XOR-MAPPED-ADDRESS for IPv4 and IPv6', () => {
    const tx = bindingRequest().transactionId
    for (const addr of [
      { host: '198.18.0.2', port: 40123 },
      { host: '2001:db8::1', port: 1 },
      { host: 'fe80::1:0:0:2', port: 65535 },
    ]) {
      assert.deepEqual(decodeAddress(encodeAddress(addr, tx, true), tx, true), addr)
      assert.deepEqual(decodeAddress(encodeAddress(addr, tx, false), tx, false), addr)
    }
  })

  it('recognises STUN and rejects other datagrams and bad fingerprints', () => {
    const req = encodeStun(bindingRequest())
    assert.equal(isStunMessage(req), true)
    assert.equal(isStunMessage(new TextEncoder().encode('WARREN-PUNCH-PROBE-0000')), false)
    assert.equal(isStunMessage(new Uint8Array([0xff, 0x01, 0, 0])), false)
    const bad = req.slice()
    bad[bad.length - 1]! ^= 1
    assert.equal(decodeStun(bad), undefined)
  })

  it('answers a Binding request with the sender address and the same transaction id', () => {
    const req = bindingRequest()
    const reply = decodeStun(answerStun(encodeStun(req), { host: '198.18.0.2', port: 5000 })!)!
    assert.equal(reply.type, STUN_BINDING_SUCCESS)
    assert.deepEqual(reply.transactionId, req.transactionId)
    assert.ok(reply.attributes.some((a) => a.type === ATTR_XOR_MAPPED_ADDRESS))
    assert.deepEqual(mappedAddress(reply), { host: '198.18.0.2', port: 5000 })
  })

  it('ignores responses and indications, and answers unknown required attributes with 420', () => {
    const from = { host: '127.0.0.1', port: 1 }
    const req = bindingRequest()
    assert.equal(answerStun(encodeStun({ ...req, type: STUN_BINDING_SUCCESS }), from), undefined)
    assert.equal(answerStun(encodeStun({ ...req, type: 0x0011 }), from), undefined)
    const withUnknown = encodeStun({ ...req, attributes: [{ type: 0x7001, value: new Uint8Array(4) }] })
    const err = decodeStun(answerStun(withUnknown, from)!)!
    assert.equal(err.type, STUN_BINDING_ERROR)
    assert.deepEqual(err.transactionId, req.transactionId)
  })
})

describe('STUN responder and client on loopback', () => {
  let responder: StunResponder
  before(async () => {
    responder = await startStunResponder({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await responder.close()
  })

  it('tells a client its address and port, from the client socket itself', async () => {
    const s = await udp()
    try {
      const { mapped, rttMs } = await stunBinding(fromDgram(s), responder.address)
      assert.deepEqual(mapped, { host: '127.0.0.1', port: s.address().port })
      assert.ok(rttMs >= 0 && rttMs < 3000)
    } finally {
      s.close()
    }
  })

  it('ignores non-STUN datagrams and still answers the next request', async () => {
    const s = await udp()
    try {
      const before = responder.answered
      s.send(Buffer.from('hello, not stun'), responder.address.port, '127.0.0.1')
      assert.equal(await nextMessage(s, 150), undefined)
      const req = bindingRequest()
      s.send(encodeStun(req), responder.address.port, '127.0.0.1')
      const reply = decodeStun((await nextMessage(s, 2000))!)!
      assert.deepEqual(reply.transactionId, req.transactionId)
      assert.equal(responder.answered, before + 1)
    } finally {
      s.close()
    }
  })

  it('times out with ERR_TIMEOUT and a hint when nobody answers', async () => {
    const silent = await udp()
    const s = await udp()
    try {
      const server = { host: '127.0.0.1', port: silent.address().port }
      await assert.rejects(stunBinding(fromDgram(s), server, { timeoutMs: 300 }), (err: unknown) => {
        assert.ok(isWarrenError(err, 'ERR_TIMEOUT'))
        assert.equal(err.message, `no STUN answer from 127.0.0.1:${server.port} within 300 ms`)
        assert.match(err.hint ?? '', /reachable over UDP/)
        return true
      })
    } finally {
      s.close()
      silent.close()
    }
  })

  it('fails with ERR_LISTEN_FAILED when the port is taken', async () => {
    const port = responder.address.port
    await assert.rejects(startStunResponder({ host: '127.0.0.1', port }), (err: unknown) => {
      assert.ok(isWarrenError(err, 'ERR_LISTEN_FAILED'))
      assert.match(
        err.message,
        new RegExp(`^the STUN responder could not bind UDP 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
      )
      assert.equal(err.hint, 'Pick another --stun-port or stop the process that holds this UDP port.')
      return true
    })
  })
})

describe('STUN over TCP', () => {
  it('a client that reads no answers is read no further once they fill the connection; reading resumes it', async () => {
    const responder = await startStunTcpResponder({ host: '127.0.0.1', port: 0 })
    try {
      const request = Buffer.from(encodeStun(bindingRequest()))
      const client = connect({ port: responder.address.port, host: '127.0.0.1' })
      await once(client, 'connect')
      client.pause() // reads nothing
      await checkStopsReading(client, Buffer.concat(Array.from({ length: 2048 }, () => request)), 'Binding requests')
      client.destroy()
    } finally {
      await responder.close()
    }
  })
})
