import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import { describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { type StunResponderOptions, startStunResponder } from '../../src/stun/codec.ts'
import { STUN_PAIR_TRIES, startStunPair } from '../../src/stun/pair.ts'
import { tcpStunBinding } from '../../src/stun/tcp-client.ts'
import { startStunTcpResponder } from '../../src/stun/tcp-server.ts'

/** A TCP listener holding a port, the way another process would. */
function holdTcp(port = 0): Promise<Server> {
  const server = createServer()
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)))
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port
}

/** True when UDP `port` on 127.0.0.1 can be bound, i.e. no responder still holds it. */
function udpFree(port: number): Promise<boolean> {
  const s = createSocket('udp4')
  return new Promise((resolve) => {
    s.once('error', () => resolve(false))
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

describe('the STUN responder pair (UDP and TCP on one port)', () => {
  it('an automatic port taken over TCP by someone else: starts again on a port free for both', async () => {
    const holder = await holdTcp()
    const taken = portOf(holder)
    let udpStarts = 0
    // the first UDP responder lands on the port another process holds over TCP, as port 0 sometimes does
    const udp = (o: StunResponderOptions) => startStunResponder({ ...o, port: udpStarts++ === 0 ? taken : o.port })
    const pair = await startStunPair({ host: '127.0.0.1', port: 0 }, { udp })
    try {
      // at least one start more; a port the system gives next may itself be held over TCP by another test's process
      assert.ok(udpStarts >= 2 && udpStarts <= STUN_PAIR_TRIES, `${udpStarts} UDP starts`)
      assert.notEqual(pair.udp.address.port, taken)
      assert.equal(pair.tcpError, undefined)
      assert.equal(pair.tcp?.address.port, pair.udp.address.port)
      assert.equal(await udpFree(taken), true, 'the first UDP responder was closed')
      const answer = await tcpStunBinding({ host: '127.0.0.1', port: pair.tcp!.address.port })
      answer.socket.destroy()
      assert.deepEqual(answer.mapped, { host: '127.0.0.1', port: answer.localPort })
    } finally {
      await pair.tcp?.close()
      await pair.udp.close()
      holder.close()
    }
  })

  it('a port the operator chose is kept: UDP only, and the TCP error says why', async () => {
    const holder = await holdTcp()
    const port = portOf(holder)
    const pair = await startStunPair({ host: '127.0.0.1', port })
    try {
      assert.equal(pair.udp.address.port, port)
      assert.equal(pair.tcp, undefined)
      assert.equal(
        pair.tcpError?.message,
        `the STUN responder could not bind TCP 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
      )
    } finally {
      await pair.udp.close()
      holder.close()
    }
  })

  it(`after ${STUN_PAIR_TRIES} automatic ports without TCP it settles for UDP, holding one UDP port only`, async () => {
    const udpPorts: number[] = []
    const udp = async (o: StunResponderOptions) => {
      const r = await startStunResponder(o)
      udpPorts.push(r.address.port)
      return r
    }
    const tcp = (o: { host?: string; port: number }) => startStunTcpResponder({ ...o, host: '203.0.113.1' }) // an address this machine does not have: always fails
    const pair = await startStunPair({ host: '127.0.0.1', port: 0 }, { udp, tcp })
    try {
      assert.equal(udpPorts.length, STUN_PAIR_TRIES)
      assert.equal(pair.tcp, undefined)
      assert.match(
        pair.tcpError?.message ?? '',
        /^the STUN responder could not bind TCP 203\.0\.113\.1:\d+: listen EADDRNOTAVAIL/,
      )
      assert.equal(pair.udp.address.port, udpPorts.at(-1))
      for (const p of udpPorts.slice(0, -1)) assert.equal(await udpFree(p), true, `UDP ${p} was closed`)
      assert.equal(await udpFree(pair.udp.address.port), false)
    } finally {
      await pair.udp.close()
    }
  })

  it('a UDP port that cannot be bound rejects with ERR_LISTEN_FAILED', async () => {
    const first = await startStunResponder({ host: '127.0.0.1', port: 0 })
    try {
      const err = await startStunPair({ host: '127.0.0.1', port: first.address.port }).then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      )
      assert.ok(isWarrenError(err))
      assert.equal(err.code, 'ERR_LISTEN_FAILED')
      assert.equal(
        err.message,
        `the STUN responder could not bind UDP 127.0.0.1:${first.address.port}: bind EADDRINUSE 127.0.0.1:${first.address.port}`,
      )
    } finally {
      await first.close()
    }
  })
})
