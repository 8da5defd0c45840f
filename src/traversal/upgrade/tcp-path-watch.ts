/**
 * Liveness of TCP direct paths (the TCP counterpart of path-watch.ts). TCP alone would notice a dead path late: a NAT
 * that forgot or changed its mapping drops the segments, and the kernel retransmits for many minutes before it gives
 * up (keepalive probes only run on an idle connection, and their defaults take over two hours).
 *
 * So every {@link TCP_CHECK_MS} the watch looks at each punched TCP connection: when its socket received no bytes
 * since the last look, it sends one ping (`/ipfs/ping/1.0.0` on a fresh stream). A connection whose ping is not
 * answered within {@link TCP_PING_TIMEOUT_MS} is aborted; new streams then take the relay and `DirectPaths` punches
 * again. A loaded connection is never pinged (bytes keep arriving), and an idle one is pinged once a second, which
 * also keeps both NATs' mappings in use.
 *
 * @packageDocumentation
 */
import type { Connection } from '@libp2p/interface'
import { WarrenError } from '../../errors.ts'
import { openPingStream } from '../../p2p/conn-ping.ts'
import { punchedSocket } from '../punch/tcp-punch.ts'

/** How often each punched TCP connection is looked at, ms. */
export const TCP_CHECK_MS = 1000
/** A ping unanswered for this long means the path is dead, ms. */
export const TCP_PING_TIMEOUT_MS = 2500

export class TcpPathWatch {
  readonly #connections: () => Iterable<Connection>
  readonly #onDead: (conn: Connection, why: string) => void
  readonly #lastRead = new WeakMap<Connection, number>()
  readonly #pinging = new WeakSet<Connection>()
  #timer: NodeJS.Timeout | undefined

  /** `connections` lists the node's connections (read at every check); only punched TCP ones are watched. */
  constructor(connections: () => Iterable<Connection>, onDead: (conn: Connection, why: string) => void) {
    this.#connections = connections
    this.#onDead = onDead
  }

  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => this.check(), TCP_CHECK_MS)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** One round (the timer calls it). */
  check(): void {
    for (const conn of this.#connections()) {
      const socket = punchedSocket(conn)
      if (socket === undefined || conn.status !== 'open' || this.#pinging.has(conn)) continue
      const read = socket.bytesRead
      const last = this.#lastRead.get(conn)
      this.#lastRead.set(conn, read)
      if (last === undefined || last !== read) continue
      this.#pinging.add(conn)
      void this.#ping(conn).finally(() => this.#pinging.delete(conn))
    }
  }

  async #ping(conn: Connection): Promise<void> {
    const started = performance.now()
    try {
      const stream = await openPingStream(conn, TCP_PING_TIMEOUT_MS)
      try {
        await stream.once(Math.max(1, TCP_PING_TIMEOUT_MS - (performance.now() - started)))
      } finally {
        await stream.close()
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
