/**
 * Liveness of TCP direct paths (the TCP counterpart of path-watch.ts). TCP alone would notice a dead path late: a NAT
 * that forgot or changed its mapping drops the segments, and the kernel retransmits for many minutes before it gives
 * up (keepalive probes only run on an idle connection, and their defaults take over two hours).
 *
 * So the watch looks at each punched TCP connection every {@link LOOK_MS} ms, first at what the kernel knows
 * (src/p2p/tcp-info.ts): sent segments unacknowledged through {@link DEAD_RETRANSMITS} retransmission time-outs in a row,
 * with nothing acknowledged for {@link DEAD_SILENT_MS}, mean the far end is unreachable (about 1 s after the data left,
 * where a ping would need 1.5 s), and the connection is aborted at once; the first time-out already marks it suspect, so the owner can check
 * the relay connections that the same NAT carried ({@link TcpPathWatch} `onSuspect`). Where the kernel cannot be asked,
 * or nothing was sent: when its socket received no bytes for
 * {@link TCP_CHECK_MS}, or for {@link OWED_MS} after this node sent bytes on it (an answer is owed: a new stream, data
 * whose window updates should come back), it sends one ping (`/ipfs/ping/1.0.0` on a fresh stream). A connection whose
 * ping is not answered within {@link TCP_PING_TIMEOUT_MS} is aborted; new streams then take the relay and `DirectPaths` punches
 * again. A loaded connection is never pinged (bytes keep arriving), and an idle one is pinged once a second, which
 * also keeps both NATs' mappings in use. With no punched connection the timer sleeps until {@link TcpPathWatch.wake}
 * (a new connection).
 *
 * @packageDocumentation
 */
import type { Socket } from 'node:net'
import type { Connection } from '@libp2p/interface'
import { WarrenError } from '../../errors.ts'
import { openPingStream } from '../../p2p/conn-ping.ts'
import { LazyTicker } from '../../p2p/lazy-ticker.ts'
import { tcpInfo } from '../../p2p/tcp-info.ts'
import { punchedSocket } from '../punch/tcp-punch.ts'

/** A punched TCP connection that read nothing for this long gets a ping, ms. */
export const TCP_CHECK_MS = 1000
/** …or that read nothing for this long after this node sent bytes on it (an answer is owed), ms. */
export const OWED_MS = 500
/** How often the connections are looked at, ms. */
export const LOOK_MS = 100
/** Retransmission time-outs in a row with unacknowledged data after which the path counts as dead… */
export const DEAD_RETRANSMITS = 2
/**
 * …once nothing was acknowledged for this long either, ms: two time-outs can come within ~0.6 s on a LAN-like round
 * trip, and a burst of loss or a starved machine can last that long on a path that still works.
 */
export const DEAD_SILENT_MS = 1000
/** A ping unanswered for this long means the path is dead, ms. */
export const TCP_PING_TIMEOUT_MS = 1000

/** Whether an outbound stream on `conn` still waits for its protocol to be answered (also an answer owed). */
function negotiating(conn: Connection): boolean {
  return conn.streams.some((s) => s.direction === 'outbound' && (s.protocol === undefined || s.protocol === ''))
}

export class TcpPathWatch {
  readonly #connections: () => Iterable<Connection>
  readonly #onDead: (conn: Connection, why: string) => void
  /** Per connection: bytes read and written when something was last read (or last pinged), and when. */
  readonly #last = new WeakMap<Connection, { read: number; written: number; at: number }>()
  readonly #pinging = new WeakSet<Connection>()
  /** Connections already reported suspect, until an acknowledgement comes again. */
  readonly #suspected = new WeakSet<Connection>()
  readonly #onSuspect: ((conn: Connection, why: string) => void) | undefined
  readonly #ticker = new LazyTicker(LOOK_MS, () => this.check() > 0)

  /**
   * `connections` lists the node's connections (read at every check); only punched TCP ones are watched. `onDead`
   * runs just before a dead connection is aborted; `onSuspect` once when data on it first goes unacknowledged past a
   * retransmission time-out.
   */
  constructor(
    connections: () => Iterable<Connection>,
    onDead: (conn: Connection, why: string) => void,
    onSuspect?: (conn: Connection, why: string) => void,
  ) {
    this.#connections = connections
    this.#onDead = onDead
    this.#onSuspect = onSuspect
  }

  start(): void {
    this.#ticker.start()
  }

  /** A connection may have been opened: the checks start again if they slept for want of punched connections. */
  wake(): void {
    this.#ticker.wake()
  }

  stop(): void {
    this.#ticker.stop()
  }

  /** Whether the timer is off for want of punched connections (or stopped). */
  get sleeping(): boolean {
    return this.#ticker.sleeping
  }

  /** One round (the timer calls it): how many punched connections it looked at. */
  check(): number {
    const now = Date.now()
    let watched = 0
    for (const conn of this.#connections()) {
      const socket = punchedSocket(conn)
      if (socket === undefined || conn.status !== 'open') continue
      watched++
      if (this.#kernelSaysDead(conn, socket)) continue
      if (this.#pinging.has(conn)) continue
      const last = this.#last.get(conn)
      if (last === undefined || last.read !== socket.bytesRead) {
        this.#last.set(conn, { read: socket.bytesRead, written: socket.bytesWritten, at: now })
        continue
      }
      // silent for a whole interval, or silent for OWED_MS after this node sent something (an answer is owed)
      const owed = (socket.bytesWritten !== last.written || negotiating(conn)) && now - last.at >= OWED_MS
      if (!owed && now - last.at < TCP_CHECK_MS) continue
      this.#pinging.add(conn)
      void this.#ping(conn).finally(() => {
        this.#pinging.delete(conn)
        this.#last.set(conn, { read: socket.bytesRead, written: socket.bytesWritten, at: Date.now() })
      })
    }
    return watched
  }

  /**
   * Reads TCP_INFO: unacknowledged data through {@link DEAD_RETRANSMITS} time-outs aborts the connection (true); through
   * one reports it suspect. False when the kernel sees nothing wrong or cannot be asked.
   */
  #kernelSaysDead(conn: Connection, socket: Socket): boolean {
    const info = tcpInfo(socket)
    if (info === undefined) return false
    if (info.unacked === 0 || info.retransmits === 0) {
      this.#suspected.delete(conn)
      return false
    }
    const what =
      `${info.unacked} sent segment(s) unacknowledged for ${info.lastAckMs} ms through ${info.retransmits} ` +
      `retransmission time-out(s) (round trip ${info.rttMs.toFixed(1)} ms)`
    if (info.retransmits < DEAD_RETRANSMITS || info.lastAckMs < DEAD_SILENT_MS) {
      if (!this.#suspected.has(conn)) {
        this.#suspected.add(conn)
        this.#onSuspect?.(conn, `the direct TCP path is not acknowledged: ${what}`)
      }
      return false
    }
    const why = `no acknowledgement on the direct TCP path: ${what}`
    this.#onDead(conn, why)
    conn.abort(
      new WarrenError('ERR_TIMEOUT', why, {
        hint: 'The NAT mapping probably changed or expired; new streams use the relay while Warren punches again.',
        details: { remote: conn.remoteAddr.toString(), silentMs: info.lastAckMs, retransmits: info.retransmits },
      }),
    )
    return true
  }

  async #ping(conn: Connection): Promise<void> {
    const started = performance.now()
    try {
      const stream = await openPingStream(conn, TCP_PING_TIMEOUT_MS)
      try {
        await stream.once(Math.max(1, TCP_PING_TIMEOUT_MS - (performance.now() - started)))
      } finally {
        // not awaited: a close waits for the far side, which a path that died right after the pong never sends
        void stream.close().catch(() => {})
      }
    } catch (err) {
      if (conn.status !== 'open') return
      const ms = Math.round(performance.now() - started)
      const why = `no answer on the direct TCP path for ${ms} ms`
      this.#onDead(conn, why)
      conn.abort(
        new WarrenError('ERR_TIMEOUT', `${why}: ${(err as Error).message}`, {
          hint: 'The NAT mapping probably changed or expired; new streams use the relay while Warren punches again.',
          details: { remote: conn.remoteAddr.toString(), silentMs: ms },
        }),
      )
    }
  }
}
