/**
 * Parked idle connections on the relay (src/relay/server/parked-link.ts), on real nodes over loopback: a parked
 * connection answers its client's Yamux pings and the relay's own, wakes for a circuit or a stream of its client
 * with its Noise nonces and stream ids in step (every byte checked by sha256), closes when its client goes, is
 * reset on a message that does not open, stops reading a client that reads none of its ping answers, and is never
 * parked with a stream open. The shapes parking relies on are checked against the installed js-libp2p packages.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Connection } from '@libp2p/interface'
import { openPingStream } from '../../src/p2p/conn-ping.ts'
import { PING_PROTOCOL } from '../../src/p2p/ping-answer.ts'
import { startConnSweep } from '../../src/relay/server/conn-sweep.ts'
import {
  muxerFactories,
  sealsWithOwnCipher,
  startIdleParking,
  transportListeners,
} from '../../src/relay/server/idle-park.ts'
import { parkableParts, WRAPPER_EVENTS } from '../../src/relay/server/parkable.ts'
import { ParkedLink, parkConnection, parkedLink, parkingCounts } from '../../src/relay/server/parked-link.ts'
import type { Relay } from '../../src/relay/server/relay-node.ts'
import { cleanup } from '../support/cleanup.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay } from '../support/nodes.ts'
import { hashServiceForSuite } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

const MiB = 1024 * 1024

/** V8's `gc`, without --expose-gc on the command line. */
function collector(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/** The relay's connection to `peer`, parked (waits until nothing is in flight on it). */
async function parkedConnTo(relay: Relay, peer: string): Promise<Connection> {
  const muxers = muxerFactories(relay.libp2p)
  const listeners = transportListeners(relay.libp2p)
  return await eventually(
    () => {
      const conn = relay.libp2p.getConnections().find((c) => c.remotePeer.toString() === peer)
      if (conn === undefined) return undefined
      return parkedLink(conn) !== undefined ||
        parkConnection(conn, muxers, listeners(), sealsWithOwnCipher(relay.libp2p))
        ? conn
        : undefined
    },
    { message: `the relay parks its connection to ${peer}`, timeoutMs: 15_000 },
  )
}

/** A relay and node B holding a reservation on it (on its allow list), with B's connection parked on the relay. */
async function parkedB(c: ReturnType<typeof cleanup>) {
  const b = await nodeKey()
  const relay = c.add(await startTestRelay({ allow: [b.id] }))
  const nodeB = c.add(await startNode({ key: b, config: { relays: [relay.addrs[0]!] } }))
  // the relay's socket, taken before parking puts the parked link in place of its wrapper
  const before = await eventually(() => relay.libp2p.getConnections().find((x) => x.remotePeer.toString() === b.id), {
    message: `the relay's connection to ${b.id}`,
  })
  const relaySocket = (before as unknown as { maConn: { socket: import('node:net').Socket } }).maConn.socket
  const conn = await parkedConnTo(relay, b.id)
  const bConn = nodeB.libp2p.getConnections(relay.peerId)[0]!
  const bSocket = (bConn as unknown as { maConn: { socket: import('node:net').Socket } }).maConn.socket
  return { relay, nodeB, conn, bConn, bSocket, relaySocket }
}

describe('parked idle connections on the relay (loopback)', () => {
  const { services } = hashServiceForSuite()

  it('a parked connection answers pings both ways, then wakes for a circuit: 4 MiB relayed, sha256 intact', async () => {
    const c = cleanup()
    try {
      const b = await nodeKey()
      const relay = c.add(await startTestRelay({ allow: [b.id] }))
      const nodeB = c.add(await startNode({ key: b, config: { relays: [relay.addrs[0]!], services: services() } }))
      const found = await eventually(
        () => relay.libp2p.getConnections().find((x) => x.remotePeer.equals(nodeB.peerId) && x.streams.length === 0),
        { message: 'the relay holds an idle connection to B', timeoutMs: 15_000 },
      )
      const parts = await eventually(() => parkableParts(found, transportListeners(relay.libp2p)()), {
        message: 'nothing in flight on it',
      })
      // the socket wrapper of @libp2p/tcp listens on exactly these events, one listener each, found by its source
      assert.deepEqual(
        parts.wrapperListeners.map(([event]) => event),
        [...WRAPPER_EVENTS],
      )
      const before = parkingCounts()
      const conn = await parkedConnTo(relay, b.id)
      assert.equal(conn, found, 'the same Connection object stays in the connection manager')
      const link = parkedLink(conn)
      assert.ok(link instanceof ParkedLink)
      assert.equal(link.session, 'keys', 'only the Noise keys and counters are kept')
      assert.equal(conn.status, 'open')
      assert.deepEqual(conn.streams, [])
      assert.equal(parkingCounts().parked, before.parked + 1)
      const inactivity = parts.wrapper.inactivityTimeout
      assert.equal(parts.socket.timeout, 0, 'no inactivity timer while parked: the sweep checks it')
      for (const event of WRAPPER_EVENTS) {
        assert.ok(
          !parts.socket.rawListeners(event).some((fn) => parts.wrapperListeners.some(([, w]) => w === fn)),
          `the wrapper's ${event} listener is off the socket`,
        )
      }

      // B checks its relay the way Warren nodes do (a Yamux PING); the relay's sweep pings from the parked link
      const bConn = nodeB.libp2p.getConnections(relay.peerId)[0]!
      const bMuxer = (bConn as unknown as { muxer: { ping(): Promise<number> } }).muxer
      for (let i = 0; i < 5; i++) {
        assert.ok((await bMuxer.ping()) >= 0)
        assert.ok((await link.ping({ signal: AbortSignal.timeout(5_000) })) >= 0)
      }
      assert.equal(parkedLink(conn), link, 'pings keep it parked')

      // a circuit to B: the relay opens a STOP stream on the parked connection, which wakes it
      const nodeA = c.add(await startNode())
      const stream = await nodeA.openService(nodeB.identity().ticket, 'hash')
      assert.equal(parkedLink(conn), undefined, 'woken')
      assert.equal(parts.socket.timeout, inactivity, 'the rebuilt wrapper sets the inactivity timer again')
      assert.equal(relay.libp2p.getConnections().includes(conn), true)
      const r = await transfer(stream, 4 * MiB)
      assert.equal(r.answer, `${r.sent} ${r.sha256}`)
      assert.equal(parkingCounts().wakes, before.wakes + 1)
      // once the circuit is gone, parked again, and woken again by a second one
      await stream.close()
      await nodeA.libp2p.hangUp(nodeB.peerId)
      await parkedConnTo(relay, b.id)
      const again = await nodeA.openService(nodeB.identity().ticket, 'hash')
      const r2 = await transfer(again, 1 * MiB)
      assert.equal(r2.answer, `${r2.sent} ${r2.sha256}`)
    } finally {
      await c.run()
    }
  })

  it('a parked connection lets go of its muxer, Noise stream and session objects and socket wrapper; its TCP listener forgets its socket on close', async () => {
    const c = cleanup()
    try {
      const b = await nodeKey()
      const relay = c.add(await startTestRelay({ allow: [b.id] }))
      const nodeB = await startNode({ key: b, config: { relays: [relay.addrs[0]!] } })
      const listeners = transportListeners(relay.libp2p)
      const muxers = muxerFactories(relay.libp2p)
      let refs: WeakRef<object>[] = []
      let socket: import('node:net').Socket | undefined
      const conn = await eventually(
        () => {
          const found = relay.libp2p.getConnections().find((x) => x.remotePeer.equals(nodeB.peerId))
          const parts = found === undefined ? undefined : parkableParts(found, listeners())
          if (found === undefined || parts === undefined) return undefined
          refs = [
            new WeakRef(parts.muxer),
            new WeakRef(parts.encrypted),
            new WeakRef(parts.wrapper),
            new WeakRef(parts.encrypted.handshake),
          ]
          socket = parts.socket
          return parkConnection(found, muxers, listeners(), true) ? found : undefined
        },
        { message: 'the relay parks its connection to B', timeoutMs: 15_000 },
      )
      assert.ok(parkedLink(conn) !== undefined)
      // a WeakRef holds its target until the end of the job that made or read it: collect in later ones
      const gc = collector()
      await eventually(
        async () => {
          await new Promise((r) => setTimeout(r, 20))
          gc()
          return refs.every((r) => r.deref() === undefined)
        },
        {
          message: "the muxer, Noise's stream and session objects and the socket wrapper are collected",
          timeoutMs: 5_000,
        },
      )
      const tcp = [...listeners()].find((l) => (l as { sockets?: unknown }).sockets instanceof Set) as {
        sockets: Set<unknown>
      }
      assert.equal(tcp.sockets.has(socket), true)
      await nodeB.stop()
      await eventually(() => !tcp.sockets.has(socket), { message: 'the TCP listener forgets the closed socket' })
    } finally {
      await c.run()
    }
  })

  it('a connection that wakes while its ping is out: the rebuilt muxer takes the answer, and pings afresh after', async () => {
    const c = cleanup()
    try {
      const { conn, bConn } = await parkedB(c)
      const link = parkedLink(conn)!
      const pinging = link.ping({ signal: AbortSignal.timeout(5_000) })
      // wakes it at once, before the node's answer can arrive
      const stream = conn.newStream(PING_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      assert.equal(parkedLink(conn), undefined, 'woken')
      assert.ok((await pinging) >= 0)
      const muxer = (conn as unknown as { muxer: { ping(): Promise<number>; activePing?: unknown } }).muxer
      assert.equal(muxer.activePing, undefined, 'the muxer let go of the handed-over ping')
      assert.ok((await muxer.ping()) >= 0, 'a new ping of its own')
      await (await stream).close()
      assert.equal(conn.status, 'open')
      assert.equal(bConn.status, 'open')
    } finally {
      await c.run()
    }
  })

  it('a stream opened by the client wakes its parked connection; its nonces and stream ids go on in step', async () => {
    const c = cleanup()
    try {
      const { relay, conn, bConn } = await parkedB(c)
      const b = { id: conn.remotePeer.toString() }
      for (let round = 0; round < 3; round++) {
        const ping = await openPingStream(bConn, 5_000)
        assert.ok((await ping.once()) >= 0)
        assert.equal(parkedLink(conn), undefined, `woken in round ${round}`)
        await ping.close()
        await parkedConnTo(relay, b.id)
      }
      assert.equal(conn.status, 'open')
      assert.equal(bConn.status, 'open')
    } finally {
      await c.run()
    }
  })

  it('a parked connection closes with its client: the relay forgets the connection', async () => {
    const c = cleanup()
    try {
      const { relay, nodeB, conn } = await parkedB(c)
      const closed = new Promise<void>((r) => conn.addEventListener('close', () => r(), { once: true }))
      await nodeB.stop()
      await closed
      assert.equal(conn.status, 'closed')
      await eventually(() => relay.libp2p.getConnections(nodeB.peerId).length === 0, {
        message: 'the relay drops the connection',
      })
    } finally {
      await c.run()
    }
  })

  it('the relay closes a parked connection gracefully, or aborts it; the client sees its connection end', async () => {
    const c = cleanup()
    try {
      for (const how of ['close', 'abort'] as const) {
        const { conn, bConn } = await parkedB(c)
        const bClosed = new Promise<void>((r) => bConn.addEventListener('close', () => r(), { once: true }))
        if (how === 'close') await conn.close()
        else conn.abort(new Error('the test aborts it'))
        await bClosed
        assert.equal(conn.status, how === 'close' ? 'closed' : 'aborted', how)
        assert.notEqual(bConn.status, 'open', how)
      }
    } finally {
      await c.run()
    }
  })

  it('a message that does not open with the session keys resets the parked connection', async () => {
    const c = cleanup()
    try {
      const { conn, bConn, bSocket: socket } = await parkedB(c)
      const closed = new Promise<Event>((r) => conn.addEventListener('close', r, { once: true }))
      // a Noise message of 32 bytes that no key sealed
      socket.write(Buffer.concat([Buffer.from([0, 32]), Buffer.alloc(32, 7)]))
      const evt = (await closed) as Event & { error?: Error; local?: boolean }
      assert.equal(evt.local, true)
      assert.match(evt.error?.message ?? '', /could not verify data/)
      assert.equal(conn.status, 'aborted')
      await eventually(() => bConn.status !== 'open', { message: 'B sees the reset' })
    } finally {
      await c.run()
    }
  })

  it('a ping the client does not answer fails, and the sweep aborts the connection', async () => {
    const c = cleanup()
    try {
      const { relay, conn, bConn, bSocket: socket } = await parkedB(c)
      socket.pause() // B stops reading: the relay's ping goes unanswered
      const link = parkedLink(conn)!
      await assert.rejects(link.ping({ signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' })
      assert.equal(parkedLink(conn), link, 'still parked: aborting is the sweep’s call')
      const lines: string[] = []
      const sweep = c.add(
        startConnSweep(relay.libp2p, { periodMs: 200, tickMs: 50, timeoutMs: 300, log: (m) => lines.push(m) }),
      )
      await eventually(() => conn.status !== 'open', { message: 'the sweep aborts the connection' })
      assert.equal(conn.status, 'aborted')
      assert.equal(sweep.aborted, 1)
      assert.match(lines.join('\n'), /its ping failed \(no answer within 300 ms\)/)
      socket.resume()
      await eventually(() => bConn.status !== 'open', { message: 'B sees the reset' })
    } finally {
      await c.run()
    }
  })

  it('a client that floods pings and reads none of the answers is not read either: they do not pile up', async () => {
    const c = cleanup()
    try {
      const { conn, bConn, bSocket, relaySocket } = await parkedB(c)
      const muxer = (bConn as unknown as { muxer: { sendPing(id: number, flag: number): void } }).muxer
      bSocket.pause() // B reads nothing
      // 5,000 PINGs a turn (one Noise message of only PINGs each), for 1.2 s or 200 turns: megabytes of answers,
      // more than the two sockets' kernel buffers hold
      let most = 0
      let turns = 0
      const start = Date.now()
      while (turns < 200 && Date.now() - start < 1_200 && bConn.status === 'open') {
        for (let i = 0; i < 5_000; i++) muxer.sendPing(i, 1)
        turns++
        await new Promise((r) => setImmediate(r))
        most = Math.max(most, relaySocket.writableLength)
      }
      assert.ok(turns >= 20, `only ${turns} turns of pings were sent`)
      assert.ok(most < 256 * 1024, `the relay held ${most} bytes of answers for its client`)
      assert.equal(conn.status, 'open')
    } finally {
      await c.run()
    }
  })

  it('the idle parking parks idle connections by itself, never one with a stream open', async () => {
    const c = cleanup()
    try {
      const b = await nodeKey()
      const relay = c.add(await startTestRelay({ allow: [b.id] }))
      const nodeB = c.add(await startNode({ key: b, config: { relays: [relay.addrs[0]!], services: services() } }))
      const nodeA = c.add(await startNode())
      const stream = await nodeA.openService(nodeB.identity().ticket, 'hash')
      const parking = c.add(startIdleParking(relay.libp2p, { periodMs: 200, tickMs: 50, minAgeMs: 0 }))
      const toB = relay.libp2p.getConnections(nodeB.peerId)[0]!
      // the circuit's STOP stream stays open on B's connection: two full periods, never parked
      await new Promise((r) => setTimeout(r, 500))
      assert.equal(parkedLink(toB), undefined)
      assert.ok(toB.streams.length > 0)
      const r = await transfer(stream, 1 * MiB)
      assert.equal(r.answer, `${r.sent} ${r.sha256}`)
      await stream.close()
      // the circuit (A's relayed connection to B) ends: its STOP stream on B's connection with it
      await nodeA.libp2p.hangUp(nodeB.peerId)
      await eventually(() => parkedLink(toB) !== undefined, { message: 'parked once the circuit is gone' })
      assert.ok(parking.counts().parks >= 1)
    } finally {
      await c.run()
    }
  })
})
