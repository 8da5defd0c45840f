/**
 * The relay's policy and the node side, in one process on 127.0.0.1: real relays and nodes, real TCP services.
 * Nodes listen nowhere, so they can only be reached through their relay.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Connection } from '@libp2p/interface'
import { isWarrenError } from '../../src/errors.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { cleanup } from '../support/cleanup.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay } from '../support/nodes.ts'
import { hashServer, hashServiceForSuite } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

const MiB = 1024 * 1024

function hashAnswer(r: { sent: number; sha256: string }): string {
  return `${r.sent} ${r.sha256}`
}

describe('many peers through one relay (default preset)', () => {
  it('a node accepts 12 peers arriving through its relay in the same second (libp2p allows 5 per IP by default)', async () => {
    const hash = await hashServer()
    const c = cleanup()
    try {
      const b = await nodeKey()
      const relay = c.add(await startTestRelay({ allow: [b.id] }))
      const services = { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } }
      const nodeB = c.add(
        await startNode({ key: b, preset: 'default', config: { relays: [relay.addrs[0]!], services } }),
      )
      const peers = await Promise.all(Array.from({ length: 12 }, async () => c.add(await startNode())))
      const ticket = nodeB.identity().ticket
      const results = await Promise.allSettled(
        peers.map(async (p) => transfer(await p.openService(ticket, 'hash'), 64 * 1024)),
      )
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []))
      assert.deepEqual(failed, [], 'every peer got through the relay')
      for (const r of results) if (r.status === 'fulfilled') assert.equal(r.value.answer, hashAnswer(r.value))
    } finally {
      await c.run()
      await hash.close()
    }
  })
})

describe('relay policy and relayed service streams (loopback)', () => {
  const { services } = hashServiceForSuite()

  it('an allowed node gets an unlimited reservation; 16 MiB cross the relay with checksum and the path says relay', async () => {
    const c = cleanup()
    try {
      const b = await nodeKey()
      const relay = c.add(await startTestRelay({ allow: [b.id], limits: { dataBytes: 64 * 1024 } }))
      const nodeB = c.add(await startNode({ key: b, config: { relays: [relay.addrs[0]!], services: services() } }))
      const st = nodeB.homeRelay!.status()
      assert.equal(st.home, relay.peerId.toString())
      assert.equal(st.limits, null)
      assert.deepEqual(nodeB.identity().addrs, [`${relay.addrs[0]}/p2p-circuit`])

      const nodeA = c.add(await startNode())
      const stream = await nodeA.openService(nodeB.identity().ticket, 'hash')
      const r = await transfer(stream, 16 * MiB)
      assert.equal(r.answer, hashAnswer(r))
      const conn = nodeA.libp2p.getConnections(nodeB.peerId)[0]!
      assert.equal(conn.limits, undefined, 'no limits on a connection to an allowed node')

      const ping = await nodeA.ping(nodeB.identity().ticket)
      assert.deepEqual(
        { kind: ping.path.kind, relay: ping.path.relay },
        { kind: 'relay', relay: relay.peerId.toString() },
      )
      const peer = nodeA.peers().find((p) => p.id === b.id)!
      assert.equal(peer.path?.kind, 'relay')

      const rs = relay.status()
      assert.deepEqual(
        rs.reservations.map((x) => ({ node: x.node, allowed: x.allowed, limits: x.limits })),
        [{ node: b.id, allowed: true, limits: null }],
      )
      assert.equal(rs.totals.circuitsOpened, 1)
      assert.ok(rs.totals.bytesRelayed >= 16 * MiB, `relayed ${rs.totals.bytesRelayed} bytes`)
      assert.equal(rs.circuits.length, 1)
      assert.equal(rs.circuits[0]!.closesAt, undefined, 'unlimited circuits have no closing time')
    } finally {
      await c.run()
    }
  })

  it('a node not on the allow list gets bounded limits: data in circuit relay v2, duration in seconds over /warren/relay', async () => {
    const c = cleanup()
    try {
      const relay = c.add(await startTestRelay({ limits: { dataBytes: 256 * 1024, durationSec: 30 } }))
      const nodeB = c.add(await startNode({ config: { relays: [relay.addrs[0]!], services: services() } }))
      assert.deepEqual(nodeB.homeRelay!.status().limits, { dataBytes: 256 * 1024, durationSec: 30 })
      const aLog: string[] = []
      const nodeA = c.add(await startNode({ lines: aLog }))
      const conn = await nodeA.connect(nodeB.identity().ticket)
      // advertised to the dialer exactly: bytes, and no duration (libp2p would read ours as ms-or-seconds wrongly)
      const left = conn.limits?.bytes ?? 0n // what is left: the handshakes already used a little
      assert.ok(left > 250n * 1024n && left <= 256n * 1024n, `data limit left ${left}`)
      assert.equal(conn.limits?.seconds, undefined)
      const [res] = relay.status().reservations
      assert.deepEqual(res?.limits, { dataBytes: 256 * 1024, durationSec: 30 })
      assert.ok(relay.status().circuits[0]!.closesAt! - Date.now() > 25_000, 'closes after about 30 s, not 30 ms')
      // `warren ping` times the limited connection itself (libp2p's ping by id would try to dial an unlimited one)
      const ping = await nodeA.ping(nodeB.identity().ticket)
      assert.deepEqual({ kind: ping.path.kind, id: ping.id }, { kind: 'relay', id: nodeB.peerId.toString() })
      assert.ok(ping.rttMs > 0 && ping.rttMs < 5_000, `rtt ${ping.rttMs} ms`)

      // past the data limit the relay cuts the circuit: the transfer cannot complete
      const stream = await nodeA.openService(nodeB.identity().ticket, 'hash')
      const outcome = await transfer(stream, 2 * MiB, 10_000).then(
        (r) => (r.answer === hashAnswer(r) ? 'completed' : 'cut'),
        () => 'cut',
      )
      assert.equal(outcome, 'cut')
      await eventually(() => relay.status().circuits.length === 0, { message: 'the circuit is closed' })
      // the cut is not silent: the dialer says why and whom to allow
      const why = `warn the relayed connection to ${nodeB.peerId} through relay ${relay.peerId} ended: it used up the relay's data limit, so streams on it were cut short; ask the relay's operator to add node ${nodeB.peerId} to the relay's allow list; if it is on it, node ${nodeB.peerId} must admit this node (${nodeA.peerId}) with \`warren allow\` or an invite`
      await eventually(() => aLog.includes(why), { message: 'the dialer logs the used-up limit' })
    } finally {
      await c.run()
    }
  })

  it("closes a bounded circuit at its duration limit in seconds (libp2p's server would use milliseconds)", async () => {
    const c = cleanup()
    try {
      const relay = c.add(await startTestRelay({ limits: { durationSec: 1 } }))
      const nodeB = c.add(await startNode({ config: { relays: [relay.addrs[0]!], services: services() } }))
      const nodeA = c.add(await startNode())
      const opened = Date.now()
      const conn: Connection = await nodeA.connect(nodeB.identity().ticket)
      const closed = await new Promise<number>((resolve) => {
        conn.addEventListener('close', () => resolve(Date.now() - opened), { once: true })
        setTimeout(() => resolve(-1), 5_000)
      })
      assert.ok(closed >= 900 && closed <= 2_500, `closed after ${closed} ms`)
      assert.ok(
        relay.lines.some((l) => /closing the relayed connection .* its duration limit of 1 s is reached/.test(l)),
        relay.lines.join('\n'),
      )
    } finally {
      await c.run()
    }
  })

  it('a private relay refuses other nodes with ERR_RELAY_REFUSED and its reason, logs it, and serves allowed ones', async () => {
    const c = cleanup()
    try {
      const b = await nodeKey()
      const s = await nodeKey()
      const relay = c.add(await startTestRelay({ private: true, allow: [b.id] }))
      const stranger = c.add(await startNode({ key: s, config: { relays: [relay.addrs[0]!] } }))
      const [entry] = stranger.homeRelay!.status().relays
      assert.equal(entry?.state, 'refused')
      assert.deepEqual(entry?.error, {
        code: 'ERR_RELAY_REFUSED',
        message: `relay ${relay.peerId} refused a reservation for this node: the relay is private and node ${s.id} is not on its allow list`,
        hint: "Ask the relay's operator to add this node's id (`warren id`) to the relay's allow list, or use another relay.",
        details: { relay: relay.peerId.toString() },
      })
      await assert.rejects(stranger.homeRelay!.waitForHome(200), {
        code: 'ERR_RELAY_UNREACHABLE',
        message: 'no home relay within 200 ms',
      })
      assert.ok(relay.status().totals.refusedReservations >= 1)
      assert.ok(
        relay.lines.includes(
          `warn refused a reservation for ${s.id}: the relay is private and node ${s.id} is not on its allow list`,
        ),
        relay.lines.join('\n'),
      )
      const allowed = c.add(await startNode({ key: b, config: { relays: [relay.addrs[0]!] } }))
      assert.equal(allowed.homeRelay!.status().home, relay.peerId.toString())
    } finally {
      await c.run()
    }
  })

  it('caps reservations and circuits per node for other nodes; allowed nodes pass; refusals reach the refused node', async () => {
    const c = cleanup()
    try {
      const allowedKey = await nodeKey()
      const dialerKey = await nodeKey()
      const relay = c.add(
        await startTestRelay({
          allow: [allowedKey.id, dialerKey.id],
          limits: { maxReservations: 1, maxCircuitsPerNode: 1, dataBytes: 64 * MiB },
        }),
      )
      const relays = [relay.addrs[0]!]
      const b1 = c.add(await startNode({ config: { relays, services: services() } }))
      const b2 = c.add(await startNode({ config: { relays } }))
      assert.equal(b1.homeRelay!.status().home, relay.peerId.toString())
      assert.deepEqual(
        b2.homeRelay!.status().relays[0]?.error?.message,
        `relay ${relay.peerId} refused a reservation for this node: the relay already holds its maximum of 1 reservations for nodes not on its allow list`,
      )
      const b3 = c.add(await startNode({ key: allowedKey, config: { relays } }))
      assert.equal(b3.homeRelay!.status().home, relay.peerId.toString(), 'allowed nodes are exempt from the cap')

      const a1 = c.add(await startNode())
      await a1.openService(b1.identity().ticket, 'hash') // b1 now has its 1 circuit
      const a2 = c.add(await startNode())
      const err = await a2.openService(b1.identity().ticket, 'hash').then(
        () => undefined,
        (e: unknown) => e,
      )
      assert.ok(isWarrenError(err, 'ERR_RELAY_REFUSED'), String(err))
      assert.equal(
        err.message,
        `relay ${relay.peerId} refused a relayed connection to node ${b1.peerId}: node ${b1.peerId} already has its maximum of 1 relayed connections through this relay`,
      )
      assert.match(err.hint ?? '', /try again once fewer connections are open/)
      const dialer = c.add(await startNode({ key: dialerKey }))
      const s = await dialer.openService(b1.identity().ticket, 'hash')
      const r = await transfer(s, 1024)
      assert.equal(r.answer, hashAnswer(r), 'a circuit asked for by an allowed node passes the cap')
      assert.equal(relay.status().totals.refusedCircuits, 1)
    } finally {
      await c.run()
    }
  })

  it('caps circuits in total', async () => {
    const c = cleanup()
    try {
      const relay = c.add(await startTestRelay({ limits: { maxCircuits: 1 } }))
      const relays = [relay.addrs[0]!]
      const b = c.add(await startNode({ config: { relays, services: services() } }))
      const a1 = c.add(await startNode())
      const a2 = c.add(await startNode())
      await a1.connect(b.identity().ticket)
      await assert.rejects(a2.connect(b.identity().ticket), {
        code: 'ERR_RELAY_REFUSED',
        message: `relay ${relay.peerId} refused a relayed connection to node ${b.peerId}: the relay already carries its maximum of 1 relayed connections`,
      })
    } finally {
      await c.run()
    }
  })
})

/** A TCP proxy to 127.0.0.1:`port` that holds every chunk for `delayMs` each way: a relay that is far away. */
async function slowProxy(port: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const { createServer, connect } = await import('node:net')
  const sockets = new Set<import('node:net').Socket>()
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(s)
      })
    }
    const pass = (from: typeof client, to: typeof client): void => {
      from.on('data', (d) => setTimeout(() => to.destroyed || to.write(d), delayMs))
    }
    pass(client, upstream)
    pass(upstream, client)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

describe('home relay: choice, renewal and parallel dialing (loopback)', () => {
  it('chooses the relay with the lowest round trip, whatever its place in `relays`', async () => {
    const c = cleanup()
    try {
      const near = c.add(await startTestRelay())
      const far = c.add(await startTestRelay())
      const farPort = Number(/\/tcp\/(\d+)\//.exec(far.addrs[0]!)![1])
      // 100 ms each way: a loaded machine must not make the near relay look farther
      const proxy = await slowProxy(farPort, 100)
      c.add({ stop: () => proxy.close() })
      const farAddr = `/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${far.peerId}`
      const b = c.add(await startNode({ config: { relays: [farAddr, near.addrs[0]!] } }))
      const st = b.homeRelay!.status()
      assert.equal(st.home, near.peerId.toString())
      const rtt = Object.fromEntries(st.relays.map((r) => [r.id, r.rttMs ?? -1]))
      assert.ok(rtt[far.peerId.toString()]! >= 200, `far relay rtt ${rtt[far.peerId.toString()]} ms`)
      assert.ok(rtt[near.peerId.toString()]! < rtt[far.peerId.toString()]!)
      assert.deepEqual(
        st.relays.map((r) => r.state),
        ['standby', 'home'],
      )
      // the ticket names both relays, home first
      assert.deepEqual(b.homeRelay!.ticketAddrs().map(String), [
        `${near.addrs[0]}/p2p-circuit`,
        `${farAddr}/p2p-circuit`,
      ])
    } finally {
      await c.run()
    }
  })

  it('renews a short reservation before it expires, so the node stays reachable', async () => {
    const c = cleanup()
    const hash = await hashServer()
    try {
      const relay = c.add(await startTestRelay({ limits: { reservationTtlSec: 2 } }))
      const b: WarrenNode = c.add(
        await startNode({
          config: { relays: [relay.addrs[0]!], services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } } },
        }),
      )
      const first = relay.status().reservations[0]!.expiresAt
      // a fixed wait on purpose: two reservation lifetimes pass, so only renewals can keep the reservation
      await new Promise((r) => setTimeout(r, 4_500))
      const now = relay.status().reservations.find((x) => x.node === b.peerId.toString())
      assert.ok(now !== undefined && now.expiresAt > Date.now() && now.expiresAt > first, 'renewed')
      const a = c.add(await startNode())
      const r = await transfer(await a.openService(b.identity().ticket, 'hash'), 1024)
      assert.equal(r.answer, hashAnswer(r))
    } finally {
      await c.run()
      await hash.close()
    }
  })

  it('dials direct addresses and the relay in parallel: a silent direct address does not delay the relayed path', async () => {
    const c = cleanup()
    const hash = await hashServer()
    const { stalledServer } = await import('../support/servers.ts')
    const silent = await stalledServer() // accepts TCP and never answers the handshake
    try {
      const relay = c.add(await startTestRelay())
      const b = c.add(
        await startNode({
          config: { relays: [relay.addrs[0]!], services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } } },
        }),
      )
      const { encodeTicket } = await import('../../src/identity/ticket.ts')
      const { multiaddr } = await import('@multiformats/multiaddr')
      const ticket = encodeTicket({
        id: b.peerId,
        addrs: [multiaddr(`/ip4/127.0.0.1/tcp/${silent.port}`), ...b.homeRelay!.ticketAddrs()],
      })
      const a = c.add(await startNode())
      const t0 = performance.now()
      const s = await a.openService(ticket, 'hash')
      const ms = performance.now() - t0
      assert.ok(
        ms < 2_000,
        `relayed path used after ${ms.toFixed(0)} ms (a sequential dial waits 6 s on the silent address)`,
      )
      assert.equal(a.peers().find((p) => p.id === b.peerId.toString())?.path?.kind, 'relay')
      const r = await transfer(s, 1024)
      assert.equal(r.answer, hashAnswer(r))
    } finally {
      await c.run()
      await hash.close()
      await silent.close()
    }
  })
})
