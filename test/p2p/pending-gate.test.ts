/**
 * The handshake slots one source may hold (src/p2p/pending-gate.ts), counted by IP address, by relay for relayed
 * connections, never for loopback, and given back when the handshake is done or the connection closes.
 * test/lab/handshake-slots.test.ts floods a real relay.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MultiaddrConnection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { PendingGate } from '../../src/p2p/pending-gate.ts'

const RELAY = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'

/** A raw connection as the gate sees it: its remote address and its 'close' event. */
function conn(addr: string): MultiaddrConnection & { close(): void } {
  const target = new EventTarget()
  return Object.assign(target, {
    remoteAddr: multiaddr(addr),
    close: () => target.dispatchEvent(new Event('close')),
  }) as unknown as MultiaddrConnection & { close(): void }
}

test('one IP address holds at most perIp handshakes; another address is not held back', () => {
  const gate = new PendingGate({ perIp: 2, perRelay: 3 })
  const a = [conn('/ip4/198.18.0.7/tcp/1'), conn('/ip4/198.18.0.7/tcp/2'), conn('/ip4/198.18.0.7/tcp/3')]
  assert.deepEqual(
    a.map((c) => gate.arrived(c)),
    [false, false, true],
  )
  assert.equal(gate.arrived(conn('/ip4/198.18.0.8/tcp/1')), false)
  assert.equal(gate.refused, 1)
  assert.equal(gate.pending, 3)
})

test('an IPv6 /64 is one source; relayed connections count per relay; loopback is never counted', () => {
  const gate = new PendingGate({ perIp: 1, perRelay: 2 })
  assert.equal(gate.arrived(conn('/ip6/2001:db8:1:2::1/tcp/1')), false)
  assert.equal(gate.arrived(conn('/ip6/2001:db8:1:2::ffff/tcp/1')), true)
  const circuit = `/ip4/198.18.0.9/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`
  assert.deepEqual(
    [gate.arrived(conn(circuit)), gate.arrived(conn(circuit)), gate.arrived(conn(circuit))],
    [false, false, true],
  )
  for (let i = 0; i < 10; i++) assert.equal(gate.arrived(conn(`/ip4/127.0.0.1/tcp/${i}`)), false)
  for (let i = 0; i < 10; i++) assert.equal(gate.arrived(conn(`/ip6/::1/tcp/${i}`)), false)
  assert.equal(gate.pending, 3)
})

test('a slot comes back when the Noise handshake is done, or when the connection closes, once', async () => {
  const gate = new PendingGate({ perIp: 1, perRelay: 1 })
  const wrapped = gate.wrap({ denyInboundEncryptedConnection: () => false })
  const first = conn('/ip4/198.18.0.7/tcp/1')
  assert.equal(await wrapped.denyInboundConnection!(first), false)
  assert.equal(await wrapped.denyInboundConnection!(conn('/ip4/198.18.0.7/tcp/2')), true)
  assert.equal(await wrapped.denyInboundEncryptedConnection!({} as never, first), false)
  const second = conn('/ip4/198.18.0.7/tcp/3')
  assert.equal(await wrapped.denyInboundConnection!(second), false)
  first.close() // its slot was given back already: this gives nothing back twice
  assert.equal(await wrapped.denyInboundConnection!(conn('/ip4/198.18.0.7/tcp/4')), true)
  second.close()
  assert.equal(gate.pending, 0)
  assert.equal(await wrapped.denyInboundConnection!(conn('/ip4/198.18.0.7/tcp/5')), false)
})

test("the wrapped gater's own answers still count", async () => {
  const gate = new PendingGate({ perIp: 4, perRelay: 4 })
  const wrapped = gate.wrap({ denyInboundConnection: () => true, denyDialPeer: () => true })
  assert.equal(await wrapped.denyInboundConnection!(conn('/ip4/198.18.0.7/tcp/1')), true)
  assert.equal(await wrapped.denyDialPeer!({} as never), true)
})
