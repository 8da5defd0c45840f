/**
 * A flood of reservations from throwaway keys (real libp2p nodes on 127.0.0.1, each with a fresh key, reserving on
 * a real relay): the per-IP cap refuses all but a few, the total cap for strangers never keeps an allowed node out,
 * and the strangers' reservations are gone once they disconnect. A node that only reconnects gets its reservation
 * back.
 */
import assert from 'node:assert/strict'
import { connect, createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { relayClientParts } from '../../src/relay/client/client-store.ts'
import { relayStatusOf } from '../../src/relay/status.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'

const HINT =
  "Ask the relay's operator to add this node's id (`warren id`) to the relay's allow list, or use another relay."

interface Attempt {
  node: WarrenLibp2p
  /** The relay's status for a refused reservation (from libp2p's error), or 'OK'. */
  status: string
}

/** `n` bare libp2p nodes with fresh keys, each connecting to the relay and asking for a reservation (32 at a time). */
async function flood(relay: TestRelay, n: number, addr = relay.addrs[0]!): Promise<Attempt[]> {
  const out: Attempt[] = []
  for (let i = 0; i < n; i += 32) {
    const batch = Array.from({ length: Math.min(32, n - i) }, async (): Promise<Attempt> => {
      const node = await createNode({ privateKey: await generateNodeKey(), preset: 'test', listen: [] })
      try {
        await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
        await relayClientParts(node).store.addRelay(relay.peerId, 'configured')
        return { node, status: 'OK' }
      } catch (err) {
        return { node, status: relayStatusOf(err) ?? `not a relay status: ${String(err)}` }
      }
    })
    out.push(...(await Promise.all(batch)))
  }
  return out
}

function tally(attempts: Attempt[]): Record<string, number> {
  const t: Record<string, number> = {}
  for (const a of attempts) t[a.status] = (t[a.status] ?? 0) + 1
  return t
}

async function stopAll(attempts: Attempt[]): Promise<void> {
  await Promise.allSettled(attempts.map((a) => a.node.stop()))
}

/** A TCP proxy to the relay that can go silent: it stops forwarding but keeps both sockets open (no FIN, no RST). */
async function freezableProxy(relay: TestRelay): Promise<{ addr: string; freeze(): void; close(): void }> {
  const port = Number(relay.addrs[0]!.split('/')[4])
  let frozen = false
  const sockets: Socket[] = []
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    sockets.push(client, upstream)
    for (const s of [client, upstream]) s.on('error', () => {})
    client.on('data', (d) => frozen || upstream.write(d))
    upstream.on('data', (d) => frozen || client.write(d))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const proxyPort = (server.address() as { port: number }).port
  return {
    addr: `/ip4/127.0.0.1/tcp/${proxyPort}/p2p/${relay.peerId}`,
    freeze: () => {
      frozen = true
    },
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

describe('reservation floods (loopback, throwaway keys)', () => {
  it('127 keys from one address: 4 reservations, the rest refused with the reason; allowed nodes pass; gone on disconnect', async () => {
    const allowed = await nodeKey()
    const stranger = await nodeKey()
    const relay = await startTestRelay({ allow: [allowed.id] })
    const id = relay.peerId.toString()
    let attackers: Attempt[] = []
    const nodes: Array<{ stop(): Promise<void> }> = []
    try {
      attackers = await flood(relay, 127)
      assert.deepEqual(tally(attackers), { OK: 4, PERMISSION_DENIED: 123 })
      const held = relay.status().reservations
      assert.equal(held.length, 4)
      assert.deepEqual(new Set(held.map((r) => `${r.ip} ${r.allowed}`)), new Set(['127.0.0.1 false']))
      assert.equal(relay.status().totals.refusedReservations, 123)
      const reason =
        'the relay already holds its maximum of 4 reservations for nodes at 127.0.0.1 not on its allow list'
      // refusals are logged once, then counted
      assert.deepEqual(
        relay.lines.filter((l) => l.includes('refused a reservation')),
        [`warn refused a reservation for ${attackers.find((a) => a.status !== 'OK')!.node.peerId}: ${reason}`],
      )

      // a Warren node from the same address hears why
      const s = await startNode({ key: stranger, config: { relays: [relay.addrs[0]!] } })
      nodes.push(s)
      assert.deepEqual(s.homeRelay!.status().relays[0]?.error, {
        code: 'ERR_RELAY_REFUSED',
        message: `relay ${id} refused a reservation for this node: ${reason}`,
        hint: HINT,
        details: { relay: id },
      })
      // an allowed node is not capped
      const a = await startNode({ key: allowed, config: { relays: [relay.addrs[0]!] } })
      nodes.push(a)
      assert.equal(a.homeRelay!.status().home, id)

      // the attackers leave: their reservations go with them, the allowed node's stays
      await stopAll(attackers)
      const left = await eventually(
        () => {
          const r = relay.status().reservations
          return r.length === 1 ? r : undefined
        },
        { message: 'the attackers’ reservations are released' },
      )
      assert.deepEqual(
        left.map((r) => r.node),
        [allowed.id],
      )
      assert.equal(relay.status().totals.releasedReservations, 4)
      // … so strangers get reservations again
      const later = await startNode({ config: { relays: [relay.addrs[0]!] } })
      nodes.push(later)
      assert.equal(later.homeRelay!.status().home, id)
    } finally {
      await Promise.allSettled(nodes.map((n) => n.stop()))
      await stopAll(attackers)
      await relay.stop()
    }
  })

  it('strangers filling their whole budget never keep an allowed node out; the budget frees when they leave', async () => {
    const allowed = await nodeKey()
    // one address for every stranger here (loopback), so the per-IP caps are lifted to reach the total cap
    const relay = await startTestRelay({
      allow: [allowed.id],
      limits: { maxReservations: 127, maxReservationsPerIp: 1_000, maxConnectionsPerIp: 1_000 },
    })
    const id = relay.peerId.toString()
    let attackers: Attempt[] = []
    const nodes: Array<{ stop(): Promise<void> }> = []
    try {
      attackers = await flood(relay, 130)
      assert.deepEqual(tally(attackers), { OK: 127, PERMISSION_DENIED: 3 })
      assert.equal(relay.status().reservations.length, 127)
      const s = await startNode({ config: { relays: [relay.addrs[0]!] } })
      nodes.push(s)
      assert.equal(
        s.homeRelay!.status().relays[0]?.error?.message,
        `relay ${id} refused a reservation for this node: the relay already holds its maximum of 127 reservations for nodes not on its allow list`,
      )
      const a = await startNode({ key: allowed, config: { relays: [relay.addrs[0]!] } })
      nodes.push(a)
      assert.equal(a.homeRelay!.status().home, id)
      assert.equal(relay.status().reservations.length, 128)
      assert.deepEqual(
        relay
          .status()
          .reservations.filter((r) => r.allowed)
          .map((r) => [r.node, r.limits, r.ip]),
        [[allowed.id, null, null]],
      )

      await stopAll(attackers)
      await eventually(() => relay.status().reservations.length === 1, {
        message: 'the strangers’ reservations are released',
      })
      assert.equal(relay.status().totals.releasedReservations, 127)
    } finally {
      await Promise.allSettled(nodes.map((n) => n.stop()))
      await stopAll(attackers)
      await relay.stop()
    }
  })

  it('behind a proxy, WebSocket clients (all from the proxy’s loopback address) are not capped per IP', async () => {
    const relay = await startTestRelay({
      ws: { port: 0 },
      behindProxy: { host: 'relay.example.net' },
      limits: { maxReservationsPerIp: 2 },
    })
    let viaProxy: Attempt[] = []
    let direct: Attempt[] = []
    try {
      const wsAddr = relay.addrs.find((a) => a.includes('/ws/'))
      assert.ok(wsAddr?.startsWith('/ip4/127.0.0.1/'), relay.addrs.join(' '))
      viaProxy = await flood(relay, 5, wsAddr)
      assert.deepEqual(tally(viaProxy), { OK: 5 })
      assert.deepEqual(
        relay.status().reservations.map((r) => r.ip),
        [null, null, null, null, null],
      )
      direct = await flood(relay, 3) // over TCP, the address is the client's own
      assert.deepEqual(tally(direct), { OK: 2, PERMISSION_DENIED: 1 })
    } finally {
      await stopAll([...viaProxy, ...direct])
      await relay.stop()
    }
  })

  it('strangers that vanish without closing their connections lose their reservations at the connection ping', async () => {
    const relay = await startTestRelay()
    const proxy = await freezableProxy(relay)
    let silent: Attempt[] = []
    try {
      silent = await flood(relay, 4, proxy.addr)
      assert.deepEqual(tally(silent), { OK: 4 })
      proxy.freeze()
      // libp2p's connection monitor pings every 10 s and aborts a connection whose ping times out
      await eventually(() => relay.status().reservations.length === 0, {
        timeoutMs: 45_000,
        message: 'the silent strangers’ reservations are released',
      })
      assert.equal(relay.status().totals.releasedReservations, 4)
      assert.equal(relay.status().totals.connections, 0)
    } finally {
      proxy.close()
      await stopAll(silent)
      await relay.stop()
    }
  })

  it('a node whose connection drops reserves again, and its old reservation’s timer does not remove the new one', async () => {
    const relay = await startTestRelay({ limits: { reservationTtlSec: 2 } })
    const node = await startNode({ config: { relays: [relay.addrs[0]!] } })
    try {
      const peer = node.peerId.toString()
      const first = relay.status().reservations.find((r) => r.node === peer)
      assert.ok(first !== undefined)
      await relay.libp2p.hangUp(peerIdFromString(peer))
      await eventually(() => relay.status().totals.releasedReservations === 1, {
        message: 'the reservation is released',
      })
      await eventually(() => relay.status().reservations.find((r) => r.node === peer), {
        message: 'the node reserves again',
      })
      // the relay records the reservation before the node has its answer
      await eventually(() => node.homeRelay!.status().home === relay.peerId.toString(), {
        message: 'the node takes the relay as its home again',
      })
      // from now until well past the first reservation's expiry (the node renews at half the TTL), it holds one: a
      // check repeated over a fixed span on purpose, as the reservation must hold the whole time
      const until = first.expiresAt + 1_500
      let checks = 0
      while (Date.now() < until) {
        const held = relay.status().reservations.some((r) => r.node === peer)
        assert.ok(held, `no reservation ${until - Date.now()} ms before the end of the check`)
        checks++
        await new Promise((r) => setTimeout(r, 20))
      }
      assert.ok(checks > 0)
      assert.equal(relay.status().totals.releasedReservations, 1)
    } finally {
      await node.stop()
      await relay.stop()
    }
  })
})
