/**
 * The standby reservation is renewed by Warren (loopback, two test relays with a 2 s reservation lifetime): libp2p's
 * own timer would first refresh it after 30 s, so the relay would drop it after 2 s and the standby would be a
 * reservation in name only. Renewed at half its lifetime, the standby relay keeps listing it, with a later expiry at
 * every renewal, and B's status shows when it expires. A relay that drops the reservation while the connection stays
 * is noticed at B's next health check (every 10 s) and gets a new RESERVE.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { eventually } from '../support/eventually.ts'
import { startNode, startTestRelay } from '../support/nodes.ts'

describe('standby reservation renewal (loopback)', () => {
  it('the standby relay keeps a 2 s reservation alive past several lifetimes', async () => {
    const stops: Array<() => unknown> = []
    try {
      const r1 = await startTestRelay({ limits: { reservationTtlSec: 2 } })
      stops.push(() => r1.stop())
      const r2 = await startTestRelay({ limits: { reservationTtlSec: 2 } })
      stops.push(() => r2.stop())
      const b: WarrenNode = await startNode({ config: { relays: [r1.addrs[0]!, r2.addrs[0]!] } })
      stops.push(() => b.stop())
      const bId = b.peerId.toString()
      const standbyEntry = await eventually(
        'a standby reservation',
        () => b.homeRelay!.status().relays.find((e) => e.reserved === true),
        10_000,
      )
      const standby = [r1, r2].find((r) => r.status().id === standbyEntry.id)!
      const held = (): number | undefined => standby.status().reservations.find((x) => x.node === bId)?.expiresAt
      const first = held()
      assert.ok(first !== undefined, 'the standby relay lists no reservation of B')
      let dropped = false
      // three lifetimes later the relay still lists it, renewed: only renewals keep a 2 s reservation that long
      const renewed = await eventually(
        () => {
          const now = held()
          if (now === undefined) dropped = true
          return now !== undefined && now >= first + 6_000 ? now : undefined
        },
        { timeoutMs: 15_000, intervalMs: 100, message: 'the standby reservation renewed past three lifetimes' },
      )
      assert.equal(dropped, false, 'the standby relay dropped the reservation between two renewals')
      assert.ok(renewed > Date.now())
      const entry = b.homeRelay!.status().relays.find((e) => e.id === standbyEntry.id)!
      assert.equal(entry.reserved, true)
      assert.ok((entry.expiresAt ?? 0) > Date.now(), JSON.stringify(entry))
      assert.equal(b.homeRelay!.status().home, [r1, r2].find((r) => r !== standby)!.status().id)
    } finally {
      for (const stop of stops.reverse()) await stop()
    }
  })

  it('a relay that dropped the reservation while connected gets a new one at the next health check', async () => {
    const stops: Array<() => unknown> = []
    try {
      const r1 = await startTestRelay()
      stops.push(() => r1.stop())
      const r2 = await startTestRelay()
      stops.push(() => r2.stop())
      const lines: string[] = []
      const b: WarrenNode = await startNode({ config: { relays: [r1.addrs[0]!, r2.addrs[0]!] }, lines })
      stops.push(() => b.stop())
      const bId = b.peerId.toString()
      const standbyEntry = await eventually(
        'a standby reservation',
        () => b.homeRelay!.status().relays.find((e) => e.reserved === true),
        10_000,
      )
      const standby = [r1, r2].find((r) => r.status().id === standbyEntry.id)!
      const home = b.homeRelay!.status().home
      // the relay forgets the reservation, the connection stays: libp2p's store on B still lists it
      const server = (
        standby.libp2p.services as { relay?: { reservationStore: { removeReservation(p: unknown): void } } }
      ).relay!
      server.reservationStore.removeReservation(b.peerId)
      assert.equal(
        standby.status().reservations.some((x) => x.node === bId),
        false,
      )
      await eventually(
        'the standby relay holds the reservation again',
        () => standby.status().reservations.some((x) => x.node === bId),
        15_000,
      )
      assert.ok(
        lines.some((l) => l.includes(`standby relay ${standbyEntry.id} no longer holds this node's reservation`)),
        lines.join('\n'),
      )
      assert.equal(b.homeRelay!.status().home, home)
      assert.equal(b.homeRelay!.status().relays.find((e) => e.id === standbyEntry.id)?.reserved, true)
    } finally {
      for (const stop of stops.reverse()) await stop()
    }
  })
})
