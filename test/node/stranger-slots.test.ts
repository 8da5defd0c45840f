/**
 * Connection slots: throwaway keys cannot take the slots of known nodes. A node with a small strangers' budget is
 * flooded by real libp2p nodes with fresh keys, directly over 127.0.0.1, through its relay and over ::1; the budget,
 * the per-IP and the per-relay limits hold (counted on both sides), and a node named in a service's allow list still
 * connects and moves bytes (SHA-256 checked). A stranger allowed at runtime gets in at once.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { validateConfig } from '../../src/config/load.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { KNOWN_TAG } from '../../src/node/known-peers.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import { connectionSource } from '../../src/p2p/connection-source.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

const LIMITS = { maxStrangerConnections: 20, maxStrangerConnectionsPerIp: 12, maxStrangerConnectionsPerRelay: 5 }

let relay: TestRelay
let hash: TestServer
let node: WarrenNode
let friend: WarrenNode
const strangers: WarrenLibp2p[] = []

before(async () => {
  relay = await startTestRelay()
  hash = await hashServer()
  const friendKey = await nodeKey()
  node = await WarrenNode.start({
    privateKey: await generateNodeKey(),
    config: validateConfig({
      relays: [relay.addrs[0]!],
      services: { hash: { target: `/tcp/${hash.port}`, allow: [friendKey.id] } },
      limits: LIMITS,
      traversal: { enabled: false },
      discovery: { dht: false, mdns: false },
    }),
    listen: ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'],
    preset: 'test',
    accessListen: false,
  })
  friend = await WarrenNode.start({
    privateKey: friendKey.key,
    config: validateConfig({ traversal: { enabled: false }, discovery: { dht: false, mdns: false } }),
    listen: [],
    preset: 'test',
    accessListen: false,
  })
  await eventually('a reservation on the relay', () =>
    node.libp2p.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit')) ? true : undefined,
  )
})

after(async () => {
  await Promise.allSettled(strangers.map((s) => s.stop()))
  await friend?.stop()
  await node?.stop()
  await relay?.stop()
  await hash?.close()
})

/** `count` fresh-key nodes dial `addr`; the refused ones stop at once, the admitted ones stay connected. */
async function flood(addr: string, count: number): Promise<{ admitted: number; refused: number }> {
  let admitted = 0
  let refused = 0
  for (let i = 0; i < count; i++) {
    const s = await createNode({ privateKey: await generateNodeKey(), preset: 'test' })
    if (await connects(s, addr)) {
      strangers.push(s)
      admitted++
    } else {
      refused++
      await s.stop()
    }
  }
  return { admitted, refused }
}

/**
 * Whether `s` gets a connection to the node at `addr` that carries a ping. The dialing side finishes its handshake
 * before the far side's gate decides (Yamux is selected optimistically), so a dial alone proves nothing.
 */
async function connects(s: WarrenLibp2p, addr: string): Promise<boolean> {
  try {
    const conn = await s.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
    const stream = await conn.newStream('/ipfs/ping/1.0.0', {
      signal: AbortSignal.timeout(10_000),
      runOnLimitedConnection: true,
    })
    await stream.close()
    return true
  } catch {
    return false
  }
}

const addrOf = (proto: 'ip4' | 'ip6'): string =>
  `${node.libp2p.getMultiaddrs().find((a) => a.toString().startsWith(`/${proto}/`) && !a.toString().includes('/p2p-circuit'))}`

test('strangers get their budget and no more; a known node still gets in and moves bytes', async () => {
  // 60 over 127.0.0.1: the per-IP limit
  const direct = await flood(addrOf('ip4'), 60)
  assert.deepEqual(direct, { admitted: 12, refused: 48 })
  assert.deepEqual(node.strangers.stats(), { strangers: 12, refused: { total: 0, ip: 48, relay: 0 } })

  // 10 through the relay: every one comes from the relay's address, counted per relay, not refused wholesale
  const circuit = `${relay.addrs[0]}/p2p-circuit/p2p/${node.peerId}`
  const relayed = await flood(circuit, 10)
  assert.deepEqual(relayed, { admitted: 5, refused: 5 })
  // a refused circuit dial is tried again by the circuit transport: the gate counts each attempt
  const afterRelay = node.strangers.stats()
  assert.equal(afterRelay.strangers, 17)
  assert.deepEqual({ ...afterRelay.refused, relay: 0 }, { total: 0, ip: 48, relay: 0 })
  assert.ok(afterRelay.refused.relay >= 5, `${afterRelay.refused.relay} relayed attempts refused`)

  // 10 over ::1, another address: the total budget
  const v6 = await flood(addrOf('ip6'), 10)
  assert.deepEqual(v6, { admitted: 3, refused: 7 })
  assert.deepEqual(node.strangers.stats(), { strangers: 20, refused: { ...afterRelay.refused, total: 7 } })
  // what libp2p holds: the 20 strangers plus the relay's own connection (known, outside the budget)
  const inbound = node.libp2p.getConnections().filter((c) => c.direction === 'inbound')
  assert.equal(inbound.length, 20)
  assert.ok(node.libp2p.getConnections(relay.peerId).length >= 1, 'the relay stays connected')

  // the node allowed by a service: connects over 127.0.0.1 (whose stranger slots are full) and uses the service
  const stream = await friend.openService(node.identity().ticket, 'hash')
  const r = await transfer(stream, 1024 * 1024)
  assert.equal(r.answer, `${r.sent} ${r.sha256}`)
  assert.equal(r.sent, 1024 * 1024)
  const tags = (await node.libp2p.peerStore.get(friend.peerId)).tags
  assert.equal(tags.get(KNOWN_TAG)?.value, 100, 'the known node is tagged so that the pruner keeps it')
  assert.equal(node.strangers.stats().refused.total, 7, 'the known node took no stranger slot')
})

test('a stranger allowed at runtime gets in although the budget is full', async () => {
  const key = await generateNodeKey()
  const id = peerIdFromPrivateKey(key).toString()
  const late = await createNode({ privateKey: key, preset: 'test' })
  strangers.push(late)
  assert.equal(await connects(late, addrOf('ip4')), false)
  assert.equal(node.strangers.stats().refused.total, 8)
  node.expose('late', { target: `/tcp/${hash.port}`, allow: [id], kubo: false })
  assert.equal(node.known.has(id), true)
  assert.equal(await connects(late, addrOf('ip4')), true)
  assert.equal(node.strangers.stats().refused.total, 8)
  assert.equal(node.strangers.stats().strangers, 20, 'the newly known node holds no stranger slot')
  node.unexpose('late')
  assert.equal(node.known.has(id), false)
})

test("when the node must close connections, libp2p's pruner closes strangers' first", async () => {
  const manager = (node.libp2p as unknown as { components: { connectionManager: ConnectionManagerLike } }).components
    .connectionManager
  const max = manager.getMaxConnections()
  assert.equal(max, 300 + LIMITS.maxStrangerConnections, "the preset's limit plus the strangers' budget")
  const before = node.libp2p.getConnections().length
  assert.ok(before > 8, `${before} connections`)
  manager.setMaxConnections(8)
  try {
    await eventually('pruned down to 8', () => (node.libp2p.getConnections().length <= 8 ? true : undefined))
    assert.ok(node.libp2p.getConnections(friend.peerId).length >= 1, 'the known node keeps its connection')
    assert.ok(node.libp2p.getConnections(relay.peerId).length >= 1, 'the relay keeps its connection')
    const left = await eventually('slots of pruned strangers released', () => {
      const n = node.strangers.stats().strangers
      return n <= 6 ? n : undefined
    })
    assert.ok(left <= 6, `${left} strangers left`)
  } finally {
    manager.setMaxConnections(max)
  }
})

interface ConnectionManagerLike {
  getMaxConnections(): number
  setMaxConnections(n: number): void
}

test('slots are given back when strangers leave', async () => {
  for (const s of strangers.splice(0)) await s.stop()
  const left = await eventually('every stranger slot released', () => {
    const n = node.strangers.stats().strangers
    return n === 0 ? n : undefined
  })
  assert.equal(left, 0)
  // and a new stranger fits again
  const again = await flood(addrOf('ip4'), 1)
  assert.deepEqual(again, { admitted: 1, refused: 0 })
})

test('connectionSource: relays by id, IPv4 by address, IPv6 by /64', () => {
  const relayId = '12D3KooWBSxVvbHbNRj66jKoJevZ4dbPEcmkzSoK4w6iSuoLp2Rr'
  assert.equal(
    connectionSource(multiaddr(`/ip4/198.18.0.1/tcp/4001/p2p/${relayId}/p2p-circuit/p2p/${relayId}`)),
    `relay ${relayId}`,
  )
  assert.equal(connectionSource(multiaddr('/ip4/198.18.0.7/tcp/5')), 'ip 198.18.0.7')
  assert.equal(connectionSource(multiaddr('/ip6/2001:db8:1:2:3:4:5:6/tcp/5')), 'ip 2001:db8:1:2::/64')
  assert.equal(connectionSource(multiaddr('/ip6/2001:db8::1/udp/5')), 'ip 2001:db8:0:0::/64')
  assert.equal(connectionSource(multiaddr('/ip6/::1/tcp/5')), 'ip 0:0:0:0::/64')
  assert.equal(connectionSource(multiaddr('/ip6/::ffff:198.18.0.9/tcp/5')), 'ip 198.18.0.9')
  assert.equal(connectionSource(multiaddr('/dns4/example.net/tcp/5')), 'other')
})
