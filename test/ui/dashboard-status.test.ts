/**
 * What the dashboard polls (src/ui/dashboard-status.ts), from real nodes in one process: a peer reached through a
 * relay shows the relayed path, the relay's id and the connection's round trip once libp2p's connection monitor
 * measured it; the NAT check is pending, then says why it cannot run (traversal off), and is not run again on every
 * poll.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { dashboardStatus } from '../../src/ui/dashboard-status.ts'
import { eventually } from '../support/eventually.ts'
import { startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

describe('dashboard status', () => {
  const stops: Array<{ stop(): unknown }> = []
  after(async () => {
    await Promise.allSettled(stops.reverse().map(async (s) => s.stop()))
  })

  it('shows a relayed peer with its relay and round trip, and why the NAT check cannot run', async () => {
    const hash: TestServer = await hashServer()
    stops.push({ stop: () => hash.close() })
    const relay: TestRelay = await startTestRelay({ limits: { dataBytes: 64 * 1024 * 1024 } })
    stops.push(relay)
    const host: WarrenNode = await startNode({
      config: { relays: [relay.addrs[0]!], services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } } },
    })
    stops.push(host)
    const client: WarrenNode = await startNode()
    stops.push(client)
    const r = await transfer(await client.openService(host.identity().ticket, 'hash'), 256 * 1024)
    assert.equal(r.answer, `${r.sent} ${r.sha256}`)

    let netchecks = 0
    const status = dashboardStatus({
      status: () => client.status(),
      netcheck: () => {
        netchecks++
        return client.netcheck()
      },
      libp2p: client.libp2p,
    })
    const first = status()
    assert.deepEqual(first.netcheck, { pending: true })
    const peer = first.peers.find((p) => p.id === host.peerId.toString())
    assert.equal(peer?.path?.kind, 'relay')
    assert.equal(peer?.path?.relay, relay.peerId.toString())
    await eventually(() => status().peers.find((p) => p.id === host.peerId.toString())?.rttMs !== undefined, {
      timeoutMs: 25_000,
      message: 'the round trip of the relayed connection (the connection monitor pings every 10 s)',
    })
    const later = status()
    assert.deepEqual(later.netcheck, {
      error: 'direct paths are off (traversal.enabled is false)',
      code: 'ERR_NO_DIRECT_PATH',
    })
    assert.equal(netchecks, 1, 'one NAT check for many polls')
    assert.deepEqual(later.usage, [])
  })
})
