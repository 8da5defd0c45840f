import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { isWarrenError } from '../../src/errors.ts'
import { UdxHub, udx } from '../../src/p2p/udx/transport.ts'
import { type StunResponder, startStunResponder } from '../../src/stun/codec.ts'
import { BENCH_PROTOCOL, receiveBulk, sendBulk, type TransferReport } from '../../src/testing/natlab/stream-bench.ts'
import { decodePunchMessage, encodePunchMessage } from '../../src/traversal/punch/messages.ts'
import { handleDirectPath, upgradeToDirect } from '../../src/traversal/upgrade/attempt.ts'

function makeNode(hub: UdxHub, udp: boolean): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...(udp ? ['/ip4/127.0.0.1/udp/0'] : [])] },
    transports: [tcp(), udx({ hub })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
}

describe('/warren/punch/1.0.0 messages', () => {
  it('round-trip and reject malformed input with ERR_PROTOCOL naming the field', () => {
    const offer = {
      type: 'offer',
      token: 'ab'.repeat(16),
      mapped: { host: '198.18.0.2', port: 4000 },
      nat: 'easy',
    } as const
    assert.deepEqual(decodePunchMessage(encodePunchMessage(offer)), offer)
    const withTcp = { ...offer, tcp: { host: '198.18.0.2', port: 40000 }, tcpNat: 'hard' } as const
    assert.deepEqual(decodePunchMessage(encodePunchMessage(withTcp)), withTcp)
    // a TCP mapping without its NAT kind (as first sent) counts as endpoint-independent
    const bare = new TextEncoder().encode(JSON.stringify({ ...offer, tcp: withTcp.tcp }))
    assert.deepEqual(decodePunchMessage(bare), { ...offer, tcp: withTcp.tcp, tcpNat: 'easy' })
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'offer', token: 'xyz', mapped: offer.mapped, nat: 'easy' }, /token must be 32 hex digits$/],
      [{ type: 'answer', mapped: { host: 'example.com', port: 1 }, nat: 'easy' }, /mapped example\.com:1 is not an IP/],
      [{ type: 'answer', mapped: offer.mapped, nat: 'weird' }, /nat must be "easy" or "hard"$/],
      [{ ...offer, tcp: { host: '198.18.0.2', port: 0 } }, /mapped 198\.18\.0\.2:0 is not an IP address and port$/],
      [{ ...offer, tcp: offer.mapped, tcpNat: 'odd' }, /nat must be "easy" or "hard"$/],
      [{ type: 'hello' }, /unknown type "hello"$/],
    ]
    for (const [msg, re] of cases) {
      assert.throws(
        () => decodePunchMessage(new TextEncoder().encode(JSON.stringify(msg))),
        (err: unknown) =>
          isWarrenError(err, 'ERR_PROTOCOL') && re.test(err.message) && /upgrade both nodes/.test(err.hint ?? ''),
      )
    }
    assert.throws(
      () => decodePunchMessage(new TextEncoder().encode('{')),
      /malformed \/warren\/punch\/1\.0\.0 message: not JSON/,
    )
  })
})

describe('direct-path upgrade over an existing connection (loopback)', () => {
  let stun: StunResponder
  const hubs = [new UdxHub(), new UdxHub(), new UdxHub()]
  let a: Libp2p
  let b: Libp2p
  let noUdp: Libp2p
  before(async () => {
    stun = await startStunResponder({ host: '127.0.0.1', port: 0 })
    ;[a, b, noUdp] = await Promise.all([makeNode(hubs[0]!, true), makeNode(hubs[1]!, true), makeNode(hubs[2]!, false)])
    await handleDirectPath(b, { hub: hubs[1]!, stunServers: [stun.address] })
    await handleDirectPath(noUdp, { hub: hubs[2]!, stunServers: [stun.address] })
  })
  after(async () => {
    await Promise.all([a, b, noUdp].map((n) => n?.stop()))
    await stun?.close()
  })

  it('signals over TCP, connects over udx with Noise + Yamux, and the TCP connection stays', async () => {
    const tcpConn = await a.dial(b.getMultiaddrs().find((m) => m.toString().includes('/tcp/'))!)
    const r = await upgradeToDirect(a, tcpConn, { hub: hubs[0]!, stunServers: [stun.address] })
    assert.equal(r.plan, 'simultaneous')
    assert.match(r.connection.remoteAddr.toString(), /^\/ip4\/127\.0\.0\.1\/udp\/\d+\/p2p\//)
    assert.equal(r.connection.remotePeer.toString(), b.peerId.toString())
    assert.equal(r.connection.encryption, '/noise')
    assert.ok(r.ms < 5000)
    assert.equal(tcpConn.status, 'open')
    let received: Promise<TransferReport> | undefined
    await b.handle(BENCH_PROTOCOL, (stream) => {
      received = receiveBulk(stream)
    })
    const stream = await r.connection.newStream(BENCH_PROTOCOL)
    const sent = await sendBulk(stream, 4 * 1024 * 1024)
    assert.equal((await received!).sha256, sent.sha256)
  })

  it('fails with ERR_NO_DIRECT_PATH carrying the peer reason when the peer has no UDP listener', async () => {
    const tcpConn = await a.dial(noUdp.getMultiaddrs()[0]!)
    await assert.rejects(
      upgradeToDirect(a, tcpConn, { hub: hubs[0]!, stunServers: [stun.address] }),
      (err: unknown) => {
        assert.ok(isWarrenError(err, 'ERR_NO_DIRECT_PATH'))
        assert.equal(
          err.message,
          `no direct path to ${noUdp.peerId}: the peer said: the udx transport does not listen, so there is no socket to punch from`,
        )
        return true
      },
    )
    assert.equal(tcpConn.status, 'open')
  })

  it('fails with ERR_NO_DIRECT_PATH when no STUN server is configured', async () => {
    const tcpConn = await a.dial(b.getMultiaddrs()[0]!)
    await assert.rejects(upgradeToDirect(a, tcpConn, { hub: hubs[0]!, stunServers: [] }), {
      code: 'ERR_NO_DIRECT_PATH',
      message: 'no STUN server is configured, so the public UDP address is unknown',
      hint: 'Add a relay with a STUN port to `relays` in config.json.',
    })
  })
})
