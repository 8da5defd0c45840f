/**
 * Noticing a relay that silently disappeared (power or link lost: no FIN, no RST) in well under 1.5 s instead of at the
 * next health-check ping, without keep-alive traffic on idle links: it uses what the TCP connection to the relay
 * already shows. Every {@link CHECK_MS} the watch looks at each TCP connection to a relay (a relay in config `relays`,
 * or one that a relayed connection of this node runs through). First the kernel's view (src/p2p/tcp-info.ts): sent
 * segments unacknowledged through {@link DEAD_RETRANSMITS} retransmission time-outs in a row, with nothing acknowledged
 * for {@link DEAD_SILENT_MS}, mean the relay is gone, and the connection is aborted at once (about 1 s after the data
 * left). Then, where the
 * kernel cannot be asked or the bytes never reached the socket: when this node has sent bytes on it, or has bytes waiting for
 * the relay to open its flow-control window, and nothing came back for {@link SUSPECT_MS}, it asks the relay for one ping on that connection. A relay that is there answers (or had already
 * sent something: every stream open, every data frame, gets an answer or a window update); one that is gone does not,
 * and after {@link PING_TIMEOUT_MS} the connection is aborted. Every relayed connection through it then ends with an
 * error on its streams (never as if complete), the home relay moves to another relay at once (home-relay.ts), and
 * new connections go through the other relays.
 *
 * An idle connection is never pinged (nothing was sent, so nothing is owed), and a busy one needs no ping (bytes keep
 * coming back). At most one ping per connection is in flight. With no connection to a relay and no relayed connection,
 * the watch's timer sleeps until a connection opens.
 *
 * @example
 * ```ts
 * const links = watchRelayLinks(libp2p, { relays: config.relays, log })
 * links.checkNow('a direct path went silent')
 * links.stop()
 * ```
 */
import { Socket } from 'node:net'
import type { Connection } from '@libp2p/interface'
import { WarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { pingOnce } from '../../p2p/conn-ping.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { LazyTicker } from '../../p2p/lazy-ticker.ts'
import { isRelayed } from '../../p2p/path.ts'
import { tcpInfo } from '../../p2p/tcp-info.ts'
import { parseRelayAddr } from './home-relay.ts'

/** How often the connections to relays are looked at, ms. */
export const CHECK_MS = 200
/** Sent bytes unanswered for this long make the watch ask the relay for a ping, ms. */
export const SUSPECT_MS = 500
/** A ping unanswered for this long means the relay is gone, ms. */
export const PING_TIMEOUT_MS = 750
/**
 * A ping through a circuit (to the node at its far end) unanswered for this long means that node is gone, ms. Longer
 * than {@link PING_TIMEOUT_MS}: the ping waits behind whatever the circuit already carries, and a relay that pauses a
 * busy circuit's sender (back-pressure) can hold it there for most of a second on a loaded machine.
 */
export const CIRCUIT_PING_TIMEOUT_MS = 3000
/** Retransmission time-outs in a row with unacknowledged data after which the relay counts as gone… */
export const DEAD_RETRANSMITS = 2
/** …once nothing was acknowledged for this long either, ms (a burst of loss or a starved machine lasts ~0.6 s). */
export const DEAD_SILENT_MS = 1000

interface LinkState {
  read: number
  /** bytesWritten when something was last read. */
  written: number
  /** When bytes sent after the last read were first seen unanswered. */
  since?: number
  pinging: boolean
}

/** The net.Socket under a libp2p TCP connection (`@libp2p/tcp`'s MultiaddrConnection keeps it), if any. */
function tcpSocket(conn: Connection): Socket | undefined {
  const socket = (conn as unknown as { maConn?: { socket?: unknown } }).maConn?.socket
  return socket instanceof Socket ? socket : undefined
}

interface Pending {
  writableNeedsDrain?: boolean
  writeBuffer?: { byteLength?: number }
}

const holds = (x: unknown): boolean => {
  const p = x as Pending | undefined
  return p?.writableNeedsDrain === true || (p?.writeBuffer?.byteLength ?? 0) > 0
}

/**
 * Whether `conn`, or a relayed connection through it (`through`), holds bytes it could not send yet: a muxer waiting
 * for the relay (or the far node behind it) to open its flow-control window, which a vanished relay never does. Then
 * nothing reaches the socket at all, so its byte count alone cannot tell.
 */
function waitingToSend(conn: Connection, through: readonly Connection[]): boolean {
  for (const c of [conn, ...through]) {
    if (holds((c as unknown as { maConn?: unknown }).maConn) || c.streams.some(holds)) return true
  }
  return false
}

/** The relay a relayed connection runs through (`…/p2p/<relay>/p2p-circuit/…`). */
function relayIdOf(conn: Connection): string | undefined {
  const parts = conn.remoteAddr.getComponents()
  const i = parts.findIndex((c) => c.name === 'p2p-circuit')
  return i > 0 ? parts.slice(0, i).findLast((c) => c.name === 'p2p')?.value : undefined
}

export interface RelayLinks {
  /**
   * Pings every TCP connection to a relay now, whatever it owes, and aborts those that do not answer: for when
   * something else suggests this node's NAT forgot its mappings (a direct path just went silent), so that relay
   * reservations come back alongside the direct path rather than at the next health check.
   */
  checkNow(why: string): void
  /** Whether the watch's timer is off: no connection to a relay and no relayed connection (or stopped). */
  readonly sleeping: boolean
  stop(): void
}

/** Starts the watch. */
export function watchRelayLinks(
  libp2p: WarrenLibp2p,
  opts: { relays: readonly string[]; log?: Logger; checkMs?: number },
): RelayLinks {
  const log = opts.log ?? (() => {})
  const configured = new Set<string>()
  for (const r of opts.relays) {
    try {
      configured.add(parseRelayAddr(r).id.toString())
    } catch {
      // config validation reports bad entries
    }
  }
  const links = new WeakMap<Connection, LinkState>()

  /** Aborts the connection to a relay that is gone: every relayed connection through it ends with an error. */
  const gone = (conn: Connection, relay: string, why: string): void => {
    log('warn', `${why}; closing the connection, relayed connections through it end`)
    conn.abort(
      new WarrenError('ERR_RELAY_UNREACHABLE', why, {
        hint: 'The relay host or its network is down; Warren moves to another relay in `relays`.',
        details: { relay, remote: conn.remoteAddr.toString() },
      }),
    )
  }

  const ping = async (conn: Connection, state: LinkState, relay: string): Promise<void> => {
    state.pinging = true
    const started = performance.now()
    const silentMs = Date.now() - (state.since ?? Date.now())
    try {
      await pingOnce(conn, PING_TIMEOUT_MS)
    } catch (err) {
      if (conn.status !== 'open') return
      gone(
        conn,
        relay,
        `relay ${relay} went silent: nothing came back for ${silentMs + Math.round(performance.now() - started)} ms ` +
          `after this node sent data, and it did not answer a ping (${(err as Error).message})`,
      )
    } finally {
      state.pinging = false
      state.since = undefined
    }
  }

  /** One round over the connections to relays: how many relayed connections and relay TCP connections it saw. */
  const check = (conns: readonly Connection[]): number => {
    let watched = 0
    const relays = new Set(configured)
    const through = new Map<string, Connection[]>()
    for (const c of conns) {
      if (c.status !== 'open' || !isRelayed(c)) continue
      watched++
      const id = relayIdOf(c)
      if (id === undefined) continue
      relays.add(id)
      through.set(id, [...(through.get(id) ?? []), c])
    }
    const now = Date.now()
    for (const conn of conns) {
      if (conn.status !== 'open' || !relays.has(conn.remotePeer.toString())) continue
      const socket = tcpSocket(conn)
      if (socket === undefined) continue
      watched++
      const info = tcpInfo(socket)
      if (
        info !== undefined &&
        info.unacked > 0 &&
        info.retransmits >= DEAD_RETRANSMITS &&
        info.lastAckMs >= DEAD_SILENT_MS
      ) {
        gone(
          conn,
          conn.remotePeer.toString(),
          `relay ${conn.remotePeer} went silent: ${info.unacked} segment(s) this node sent were not acknowledged for ` +
            `${info.lastAckMs} ms through ${info.retransmits} retransmission time-outs`,
        )
        continue
      }
      const state = links.get(conn)
      if (state === undefined) {
        links.set(conn, { read: socket.bytesRead, written: socket.bytesWritten, pinging: false })
        continue
      }
      if (socket.bytesRead !== state.read) {
        state.read = socket.bytesRead
        state.written = socket.bytesWritten
        state.since = undefined
        continue
      }
      const relay = conn.remotePeer.toString()
      if (state.pinging) continue
      if (socket.bytesWritten === state.written && !waitingToSend(conn, through.get(relay) ?? [])) continue
      state.since ??= now
      if (now - state.since >= SUSPECT_MS) void ping(conn, state, relay)
    }
    return watched
  }
  /**
   * A relayed connection whose far side is gone while the relay stays up: the relay answers this node, but streams
   * opened on the circuit never get their protocol answered. An outbound stream still negotiating after
   * {@link SUSPECT_MS} makes the watch ping the peer over that circuit; no answer within {@link CIRCUIT_PING_TIMEOUT_MS}
   * aborts the circuit.
   */
  const negotiating = new WeakMap<object, number>()
  const circuitsPinged = new WeakSet<Connection>()
  const checkCircuits = (conns: readonly Connection[], now: number): void => {
    for (const conn of conns) {
      if (conn.status !== 'open' || !isRelayed(conn) || circuitsPinged.has(conn)) continue
      let stalled = false
      for (const st of conn.streams) {
        if (st.direction !== 'outbound' || (st.protocol !== undefined && st.protocol !== '')) continue
        const seen = negotiating.get(st) ?? now
        negotiating.set(st, seen)
        if (now - seen >= SUSPECT_MS) stalled = true
      }
      if (!stalled) continue
      circuitsPinged.add(conn)
      void pingCircuit(conn).finally(() => circuitsPinged.delete(conn))
    }
  }
  const pingCircuit = async (conn: Connection): Promise<void> => {
    try {
      await pingOnce(conn, CIRCUIT_PING_TIMEOUT_MS)
    } catch (err) {
      if (conn.status !== 'open') return
      const relay = relayIdOf(conn) ?? 'its relay'
      const why =
        `node ${conn.remotePeer} does not answer through relay ${relay}: a stream waited ${SUSPECT_MS} ms for its ` +
        `protocol and a ping got no answer (${(err as Error).message})`
      log('warn', `${why}; closing the relayed connection`)
      conn.abort(
        new WarrenError('ERR_RELAY_UNREACHABLE', why, {
          hint: 'The node lost its connection to the relay (a NAT that forgot its mappings, a restart); Warren dials it again.',
          details: { relay, peer: conn.remotePeer.toString() },
        }),
      )
    }
  }

  // with no connection to a relay and no relayed connection the timer sleeps until a connection opens
  const ticker = new LazyTicker(opts.checkMs ?? CHECK_MS, () => {
    const conns = libp2p.getConnections()
    const watched = check(conns)
    checkCircuits(conns, Date.now())
    return watched > 0
  })
  const wake = (): void => ticker.wake()
  libp2p.addEventListener('connection:open', wake)
  ticker.start()
  const checkNow = (why: string): void => {
    const relays = new Set(configured)
    for (const c of libp2p.getConnections()) {
      const id = isRelayed(c) ? relayIdOf(c) : undefined
      if (id !== undefined) relays.add(id)
    }
    for (const conn of libp2p.getConnections()) {
      if (conn.status !== 'open' || !relays.has(conn.remotePeer.toString()) || tcpSocket(conn) === undefined) continue
      const state = links.get(conn) ?? { read: 0, written: 0, pinging: false }
      links.set(conn, state)
      if (state.pinging) continue
      log('debug', `checking relay ${conn.remotePeer} at once: ${why}`)
      state.since ??= Date.now()
      void ping(conn, state, conn.remotePeer.toString())
    }
  }
  return {
    checkNow,
    get sleeping() {
      return ticker.sleeping
    },
    stop: () => {
      libp2p.removeEventListener('connection:open', wake)
      ticker.stop()
    },
  }
}
