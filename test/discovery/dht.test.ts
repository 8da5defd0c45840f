/**
 * Discovery through Warren's DHT in an in-process testnet: 20 nodes and 2 relays on loopback, where every node knows
 * only its own relay (3 nodes are DHT servers as well, the others clients). Nodes find each other by id alone, unknown ids fail with ERR_LOOKUP_FAILED within the time-out,
 * and a node that moves (new port, other relay) is reached again after it publishes, with no restart elsewhere.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { formatLookup } from '../../src/cli/lookup.ts'
import { formatDiscovery } from '../../src/cli/status.ts'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { decodeTicket } from '../../src/identity/ticket.ts'
import { createDhtTestnet, type DhtTestnet } from '../../src/testing/dht-testnet.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, freePort, type TestServer } from '../support/servers.ts'

const LOOKUP_TIMEOUT_MS = 3_000

describe('discovery through the DHT (20 nodes, 2 relays, in-process)', () => {
  let net: DhtTestnet
  let echo: TestServer
  const TARGET = 17 // uses relay 1; the asking node 4 uses relay 0

  before(async () => {
    echo = await echoServer()
    net = await createDhtTestnet({
      nodes: 20,
      relays: 2,
      servers: 3, // nodes 0-2 as if they had public addresses: DHT servers too
      services: { [TARGET]: { echo: { target: `/tcp/${echo.port}`, allow: ['*'] } } },
      discovery: { lookupTimeoutMs: LOOKUP_TIMEOUT_MS },
    })
    await net.waitPublished(20_000)
  })
  after(async () => {
    await net?.stop()
    await echo?.close()
  })

  it('a node that never saw another finds it by id (base58 or base36) and opens a service stream', async () => {
    const asker = net.nodes[4]! // a DHT client, like the target: clients never connect to each other
    const target = net.nodes[TARGET]!
    const id = target.peerId.toString()
    assert.equal(asker.libp2p.getConnections(target.peerId).length, 0, 'the nodes must not be connected yet')
    assert.deepEqual(asker.addressBook.learned(), {}, 'the asking node must know no address of any node')

    const found = await asker.lookup(formatNodeIdBase36(target.peerId))
    assert.equal(found.source, 'dht')
    assert.deepEqual(
      found.tried.map((t) => t.source),
      ['cache', 'config', 'dht'],
    )
    const published = target.discovery!.publisher!.status().addrs
    assert.deepEqual(found.addrs.map((a) => a.addr).sort(), [...published].sort())
    assert.ok(
      published.some((a) => a.includes('/p2p-circuit')),
      'the record carries the relay address',
    )
    assert.ok(
      published.some((a) => !a.includes('/p2p-circuit')),
      'and the direct address',
    )
    assert.ok(found.addrs.every((a) => a.ageMs !== undefined && a.ageMs < 60_000))

    const stream = await asker.openService(id, 'echo')
    const reading = (async () => {
      const parts: Uint8Array[] = []
      for await (const c of stream) parts.push(c instanceof Uint8Array ? c : c.subarray())
      return Buffer.concat(parts).toString()
    })()
    stream.send(new TextEncoder().encode('hello through the DHT'))
    await stream.close()
    assert.equal(await reading, 'hello through the DHT')

    // the second lookup comes from the cache, with the source that found it
    const again = await asker.lookup(id, { all: false })
    assert.equal(again.source, 'cache')
    assert.ok(again.addrs.every((a) => a.origin === 'dht'))
    assert.match(
      formatLookup(again),
      /^12D3KooW\w+: 2 address\(es\) in \d+ ms\n {2}\/ip4\/127\.0\.0\.1\/tcp\/\d+ +cache \(from dht\)/,
    )
  })

  it('status shows DHT health: mode, routing table, last publish; forced servers are servers', () => {
    const st = net.nodes[5]!.status().discovery!
    assert.ok(st.dht.enabled)
    assert.equal(st.dht.mode, 'client')
    assert.ok(st.dht.routingTable >= 1)
    assert.ok(st.dht.publish.lastSuccessAt !== undefined && st.dht.publish.servers! >= 1)
    const text = formatDiscovery(st).join('\n')
    assert.match(
      text,
      /^ {2}dht {4}client mode, \d+ server\(s\) in the routing table, last publish \d+s ago on \d server\(s\), 2 address\(es\)$/m,
    )
    assert.match(text, /^ {2}mdns {3}off$/m)
    for (const r of net.relays) assert.ok(r.status().dht.routingTable >= 1, 'relays know each other')
    assert.equal(
      net.nodes[1]!.status().discovery!.dht.enabled && net.nodes[1]!.libp2p.services.dht!.getMode(),
      'server',
    )
  })

  it('short tickets carry the id and the home relay only', () => {
    const ident = net.nodes[4]!.identity()
    const t = decodeTicket(ident.shortTicket)
    assert.ok(t.id.equals(net.nodes[4]!.peerId))
    assert.deepEqual(t.addrs.map(String), [`${net.relayAddr(0)}/p2p-circuit`])
    assert.ok(ident.shortTicket.length < ident.ticket.length)
  })

  it('an unknown id fails within the time-out with ERR_LOOKUP_FAILED naming every source', async () => {
    const unknown = peerIdFromPrivateKey(await generateNodeKey()).toString()
    const started = Date.now()
    await assert.rejects(net.nodes[3]!.ping(unknown), (err: unknown) => {
      assert.ok(isWarrenError(err, 'ERR_LOOKUP_FAILED'), String(err))
      assert.match(
        err.message,
        new RegExp(
          `^no address found for node ${unknown} \\(cache: nothing cached; config: no address in peers, tickets or --addr; dht: no record on the \\d+ DHT server\\(s\\) asked\\)$`,
        ),
      )
      // how many servers a lookup reaches depends on the routing tables (3-5 seen); both relays at least
      const asked = Number(/no record on the (\d+) DHT server/.exec(err.message)?.[1])
      assert.ok(asked >= 2, `asked ${asked} DHT servers`)
      assert.match(err.hint ?? '', /use its ticket \(`warren id` there\) or --addr\. The lookup waits 3000 ms/)
      return true
    })
    assert.ok(Date.now() - started < LOOKUP_TIMEOUT_MS, `took ${Date.now() - started} ms`)
  })

  it('a node that moves (new port, other relay) is reached again after it publishes, no restart elsewhere', async () => {
    const asker = net.nodes[6]!
    const mover = 9
    const id = net.nodes[mover]!.peerId.toString()
    assert.equal((await asker.ping(id)).id, id)
    const oldAddrs = net.nodes[mover]!.discovery!.publisher!.status().addrs

    const moved = await net.restart(mover, 0) // relay 1 (9 % 2) → relay 0, new TCP port
    // published at once, and again when the reservation on relay 0 adds its circuit address
    await eventually(() => moved.discovery!.publisher!.status().addrs.some((a) => a.includes('/p2p-circuit')), {
      timeoutMs: 20_000,
      message: 'a relayed address in the published record',
    })
    const newAddrs = moved.discovery!.publisher!.status().addrs
    assert.ok(
      newAddrs.every((a) => !oldAddrs.includes(a)),
      'every address changed',
    )
    assert.ok(
      oldAddrs.some((a) => a.includes(net.relays[1]!.peerId.toString())),
      'the old record names relay 1',
    )
    assert.ok(
      newAddrs.some((a) => a.includes(net.relays[0]!.peerId.toString())),
      'the new record names relay 0',
    )

    // the asker still holds the old addresses in its cache; the ping reaches the moved node all the same
    assert.deepEqual((await asker.lookup(id, { all: false })).addrs.map((a) => a.addr).sort(), [...oldAddrs].sort())
    assert.equal((await asker.ping(id)).id, id)
    // and every other node finds the new record
    const seen = await net.nodes[13]!.lookup(id, { fresh: true })
    assert.deepEqual(seen.addrs.map((a) => a.addr).sort(), [...newAddrs].sort())
  })

  it('a failed dial to cached or configured addresses triggers one fresh lookup', async () => {
    const dead = `/ip4/127.0.0.1/tcp/${await freePort()}`
    // cached: a dead address from an earlier "lookup"
    const asker = net.nodes[8]!
    const target = net.nodes[15]!
    const id = target.peerId.toString()
    asker.discovery!.resolver.cache.set(id, {
      addrs: [multiaddr(dead)],
      origin: 'dht',
      cachedAt: Date.now(),
      madeAt: Date.now(),
    })
    assert.equal((await asker.ping(id)).id, id)
    const now = await asker.lookup(id, { all: false })
    assert.equal(now.source, 'cache')
    assert.deepEqual(now.addrs.map((a) => a.addr).sort(), [...target.discovery!.publisher!.status().addrs].sort())
    // configured: a stale --addr (as from an old ticket)
    const other = net.nodes[11]!
    assert.equal((await net.nodes[10]!.ping(other.peerId.toString(), { addrs: [dead] })).id, other.peerId.toString())
  })
})
