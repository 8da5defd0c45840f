/**
 * Who may make a node punch: real Warren nodes over loopback, a relay with a STUN responder on 127.0.0.1. A stranger's
 * punch request is refused with its reason (and no STUN, probe or connect is made); a node allowed by a service gets
 * a direct path; a node this node dialled, and any node once a service is public, are answered; the per-node and the
 * strangers' rate limits refuse the request past them with their reasons.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { Connection, PeerId } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { validateConfig } from '../../src/config/load.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { WarrenError } from '../../src/errors.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import { PUNCH_REFUSED, PunchGate } from '../../src/traversal/punch/gate.ts'
import {
  decodePunchMessage,
  encodePunchMessage,
  PUNCH_PROTOCOL,
  type PunchMessage,
} from '../../src/traversal/punch/messages.ts'
import { upgradeToDirect } from '../../src/traversal/upgrade/attempt.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'

const NOT_ALLOWED = `${PUNCH_REFUSED} no service here allows this node, and this node did not dial it`
const PER_PEER = `${PUNCH_REFUSED} more than 3 requests from this node in a minute (traversal.punchRequestsPerPeer)`
const STRANGERS = `${PUNCH_REFUSED} more than 4 requests from unknown nodes in a minute (traversal.punchRequestsPerMinute)`

let relay: TestRelay
let hash: TestServer
let node: WarrenNode
let friend: WarrenNode
const others: WarrenNode[] = []

async function start(config: ConfigInput, listen: string[] = ['/ip4/127.0.0.1/tcp/0']): Promise<WarrenNode> {
  const n = await WarrenNode.start({
    privateKey: (await nodeKey()).key,
    config: validateConfig({ relays: [relay.addrs[0]!], discovery: { dht: false, mdns: false }, ...config }),
    listen,
    preset: 'test',
    accessListen: false,
  })
  // the relay's STUN responder, learned in the background at start
  await eventually('a STUN server', () => ((n.directPaths?.stunServers().length ?? 0) > 0 ? true : undefined))
  return n
}

before(async () => {
  relay = await startTestRelay()
  hash = await hashServer()
  const friendKey = await nodeKey()
  node = await WarrenNode.start({
    privateKey: (await nodeKey()).key,
    config: validateConfig({
      relays: [relay.addrs[0]!],
      services: { hash: { target: `/tcp/${hash.port}`, allow: [friendKey.id] } },
      traversal: { punchRequestsPerPeer: 3, punchRequestsPerMinute: 4 },
      discovery: { dht: false, mdns: false },
    }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
    accessListen: false,
  })
  await eventually('a STUN server', () => ((node.directPaths?.stunServers().length ?? 0) > 0 ? true : undefined))
  friend = await WarrenNode.start({
    privateKey: friendKey.key,
    config: validateConfig({ relays: [relay.addrs[0]!], discovery: { dht: false, mdns: false } }),
    listen: [],
    preset: 'test',
    accessListen: false,
  })
  await eventually('a STUN server', () => ((friend.directPaths?.stunServers().length ?? 0) > 0 ? true : undefined))
})

after(async () => {
  await Promise.allSettled(others.map((o) => o.stop()))
  await friend?.stop()
  await node?.stop()
  await relay?.stop()
  await hash?.close()
})

/** A direct TCP connection from `from` to the node (not relayed, so no upgrade starts by itself). */
const connect = (from: WarrenNode): Promise<Connection> => from.connect(node.identity().ticket)

/**
 * One punch request by hand: an offer toward 127.0.0.1:9 (nothing listens there), and the node's first message back.
 * The stream is then reset, which ends the node's side of an answered request at once.
 */
async function ask(conn: Connection): Promise<PunchMessage> {
  const signal = AbortSignal.timeout(10_000)
  const stream = await conn.newStream(PUNCH_PROTOCOL, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: 1024 })
    const offer: PunchMessage = {
      type: 'offer',
      token: randomBytes(16).toString('hex'),
      mapped: { host: '127.0.0.1', port: 9 },
      nat: 'easy',
    }
    await lp.write(encodePunchMessage(offer), { signal })
    return decodePunchMessage((await lp.read({ signal })).subarray())
  } finally {
    stream.abort(new Error('done asking'))
  }
}

async function upgradeError(from: WarrenNode, conn: Connection): Promise<WarrenError> {
  const paths = from.directPaths!
  const err = await upgradeToDirect(from.libp2p, conn, { hub: paths.hub, stunServers: paths.stunServers() }).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(err instanceof WarrenError, `a WarrenError, got ${String(err)}`)
  return err
}

test("a stranger's punch request is refused with its reason", async () => {
  const stranger = await start({})
  others.push(stranger)
  const conn = await connect(stranger)
  const err = await upgradeError(stranger, conn)
  assert.equal(err.code, 'ERR_NO_DIRECT_PATH')
  assert.equal(err.message, `no direct path to ${node.peerId}: the peer said: ${NOT_ALLOWED}`)
  assert.equal(err.details?.refused, true)
  assert.deepEqual(await ask(conn), { type: 'failed', reason: NOT_ALLOWED })
  assert.equal(node.directPaths?.status()[stranger.peerId.toString()], undefined, 'nothing was punched for it')
})

test('a node allowed by a service gets a direct path; its fourth request in a minute is refused', async () => {
  const conn = await connect(friend)
  const paths = friend.directPaths!
  const r = await upgradeToDirect(friend.libp2p, conn, { hub: paths.hub, stunServers: paths.stunServers() })
  assert.equal(r.connection.remotePeer.toString(), node.peerId.toString())
  assert.ok(['tcp', 'simultaneous'].includes(r.plan), `plan ${r.plan}`)
  assert.equal(r.connection.status, 'open')
  // requests 2 and 3 are answered, the fourth is refused
  assert.equal((await ask(conn)).type, 'answer')
  assert.equal((await ask(conn)).type, 'answer')
  assert.deepEqual(await ask(conn), { type: 'failed', reason: PER_PEER })
})

test('a node this node dialled is answered', async () => {
  const dialled = await start({})
  others.push(dialled)
  const conn = await node.connect(dialled.identity().ticket)
  assert.equal(conn.direction, 'outbound')
  const back = await eventually('the inbound side of the connection', () =>
    dialled.libp2p.getConnections(node.peerId).find((c) => c.status === 'open'),
  )
  assert.equal((await ask(back)).type, 'answer')
})

test('with a public service every node is answered, within the strangers’ budget per minute', async () => {
  const a = await start({})
  const b = await start({})
  others.push(a, b)
  const ca = await connect(a)
  const cb = await connect(b)
  assert.deepEqual(await ask(ca), { type: 'failed', reason: NOT_ALLOWED })
  node.expose('open', { target: `/tcp/${hash.port}`, allow: ['*'], kubo: false })
  try {
    // the dialled node of the test before took one of the 4: a gets 3 (its own limit), b none
    for (let i = 0; i < 3; i++) assert.equal((await ask(ca)).type, 'answer')
    assert.deepEqual(await ask(ca), { type: 'failed', reason: PER_PEER })
    assert.deepEqual(await ask(cb), { type: 'failed', reason: STRANGERS })
    // a known node does not count against the strangers' budget (and the friend's own limit is spent)
    const friendConn = friend.libp2p.getConnections(node.peerId).find((c) => c.status === 'open')!
    assert.deepEqual(await ask(friendConn), { type: 'failed', reason: PER_PEER })
  } finally {
    node.unexpose('open')
  }
  assert.deepEqual(await ask(cb), { type: 'failed', reason: NOT_ALLOWED })
})

test('PunchGate forgets requests older than a minute', () => {
  let now = 0
  const peer = { toString: () => 'p1' } as unknown as PeerId
  const gate = new PunchGate({ perPeer: 2, strangersPerMinute: 10, admission: () => 'public', now: () => now })
  assert.equal(gate.check(peer), undefined)
  assert.equal(gate.check(peer), undefined)
  assert.equal(
    gate.check(peer),
    `${PUNCH_REFUSED} more than 2 requests from this node in a minute (traversal.punchRequestsPerPeer)`,
  )
  now = 60_001
  assert.equal(gate.check(peer), undefined)
})
