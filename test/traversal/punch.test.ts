/** UDP hole punching on loopback: probes, plans and the peer endpoint they find. */
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { fromDgram } from '../../src/p2p/udx/packet-socket.ts'
import { decodeProbe, encodeProbe, natBehaviour, punch, punchPlan } from '../../src/traversal/punch/punch.ts'

function udp(): Promise<Socket> {
  const s = createSocket('udp4')
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)))
}

describe('punching on loopback', () => {
  it('two sockets that probe each other find the path and report the peer endpoint', async () => {
    const [a, b] = await Promise.all([udp(), udp()])
    try {
      const token = new Uint8Array(16).fill(7)
      const at = (s: Socket) => ({ host: '127.0.0.1', port: s.address().port })
      const pa = punch({ plan: 'simultaneous', sockets: [fromDgram(a)], token, remote: at(b), timeoutMs: 2000 })
      const pb = punch({ plan: 'simultaneous', sockets: [fromDgram(b)], token, remote: at(a), timeoutMs: 2000 })
      const [ra, rb] = await Promise.all([pa.result, pb.result])
      assert.deepEqual(ra.remote, at(b))
      assert.deepEqual(rb.remote, at(a))
      assert.ok(ra.probesSent >= 1 && ra.probesSent <= 100)
      pa.stop()
      pb.stop()
    } finally {
      a.close()
      b.close()
    }
  })

  it('ignores probes with another token and gives up with ERR_TIMEOUT after its budget', async () => {
    const [a, b] = await Promise.all([udp(), udp()])
    try {
      const remote = { host: '127.0.0.1', port: b.address().port }
      const other = punch({
        plan: 'simultaneous',
        sockets: [fromDgram(b)],
        token: new Uint8Array(16).fill(2),
        remote: { host: '127.0.0.1', port: a.address().port },
        timeoutMs: 400,
      })
      const s = punch({
        plan: 'simultaneous',
        sockets: [fromDgram(a)],
        token: new Uint8Array(16).fill(1),
        remote,
        timeoutMs: 400,
      })
      await assert.rejects(s.result, (err: unknown) => {
        assert.ok(isWarrenError(err, 'ERR_TIMEOUT'))
        assert.match(err.message, /^no direct UDP path to 127\.0\.0\.1 after \d+ probes in 400 ms$/)
        assert.match(err.hint ?? '', /relayed connection stays in use/)
        return true
      })
      await assert.rejects(other.result)
    } finally {
      a.close()
      b.close()
    }
  })

  it('classifies NATs and picks plans; probe packets carry kind and token only', () => {
    assert.equal(natBehaviour({ host: 'x', port: 1 }, { host: 'x', port: 1 }), 'easy')
    assert.equal(natBehaviour({ host: 'x', port: 1 }, { host: 'x', port: 2 }), 'hard')
    assert.equal(punchPlan('easy', 'easy'), 'simultaneous')
    assert.equal(punchPlan('hard', 'easy'), 'birthday-hard')
    assert.equal(punchPlan('easy', 'hard'), 'birthday-easy')
    assert.equal(punchPlan('hard', 'hard'), 'simultaneous')
    const token = new Uint8Array(16).fill(9)
    assert.equal(decodeProbe(encodeProbe('probe', token), token), 'probe')
    assert.equal(decodeProbe(encodeProbe('ack', token), token), 'ack')
    assert.equal(decodeProbe(encodeProbe('ack', token), new Uint8Array(16)), undefined)
    assert.throws(() => encodeProbe('probe', new Uint8Array(3)), { message: 'a punch token is 16 bytes' })
  })
})
