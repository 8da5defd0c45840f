/**
 * The dialer (src/node/dial/dialer.ts) on real nodes over loopback: a node handed over already resolved (what
 * `AddressBook.resolve` returns) is dialed as given, its name not resolved again and nothing learned from it, and a
 * service stream over that connection carries a whole transfer intact; an open connection is reused; the node itself
 * is refused.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { validateConfig } from '../../src/config/load.ts'
import { isWarrenError } from '../../src/errors.ts'
import type { ResolvedNode } from '../../src/identity/address-book.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import { nodeKey } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

let hash: TestServer
let server: WarrenNode
let client: WarrenNode

const quiet = { discovery: { dht: false, mdns: false }, traversal: { enabled: false } }

before(async () => {
  hash = await hashServer()
  const clientKey = await nodeKey()
  server = await WarrenNode.start({
    privateKey: (await nodeKey()).key,
    config: validateConfig({ ...quiet, services: { hash: { target: `/tcp/${hash.port}`, allow: [clientKey.id] } } }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
    accessListen: false,
  })
  client = await WarrenNode.start({
    privateKey: clientKey.key,
    config: validateConfig(quiet),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
    accessListen: false,
  })
})

after(async () => {
  await client?.stop()
  await server?.stop()
  await hash?.close()
})

test('a resolved node is dialed as given, and its service stream carries a transfer intact', async () => {
  const target: ResolvedNode = { id: server.peerId, addrs: server.libp2p.getMultiaddrs() }
  const stream = await client.openService(target, 'hash')
  const res = await transfer(stream, 1024 * 1024)
  assert.equal(res.answer, `${res.sent} ${res.sha256}`)
  assert.equal(client.addressBook.learned()[server.peerId.toString()], undefined, 'nothing was learned')

  const again = await client.connect(target)
  assert.equal(again, await client.connect(server.peerId.toString()), 'the open connection is reused')
})

test('the node itself is refused, resolved or by name', async () => {
  const self = (err: unknown): boolean => isWarrenError(err, 'ERR_DIAL_FAILED') && /this node itself/.test(err.message)
  await assert.rejects(client.connect({ id: client.peerId, addrs: [] }), self)
  await assert.rejects(client.connect(client.peerId.toString()), self)
})
