/**
 * Which connection a node's circuits go over. js-libp2p's relay server opens the STOP stream on the node's oldest
 * connection; after the node's NAT forgot its mappings that one is dead (the relay hears nothing, so it stays open)
 * while the node reserves again over a new one. So the relay remembers the connection each node last reserved over
 * and opens circuits there; and a STOP already waiting on an old connection when the node reserves again is given
 * up and sent over the new one at once, so the node is reachable as soon as it has reserved again.
 *
 * @example
 * ```ts
 * const over = new ReservedConnections()
 * over.reserved(nodeId, conn)                        // from the reservation hook
 * await over.stopVia(nodeId, conn, signal, (c, s) => stopHop({ connection: c }, { signal: s }))
 * ```
 */
import type { Connection } from '@libp2p/interface'

export class ReservedConnections {
  readonly #over = new Map<string, Connection>()
  readonly #waiters = new Map<string, Set<(conn: Connection) => void>>()

  /** `node` reserved over `conn`: circuits to it go there from now on, and waiting STOPs move there. */
  reserved(node: string, conn: Connection): void {
    this.#over.set(node, conn)
    for (const w of this.#waiters.get(node) ?? []) w(conn)
  }

  /** `node` has no connection left. */
  forget(node: string): void {
    this.#over.delete(node)
  }

  /** The open connection `node` last reserved over, else `fallback`. */
  connectionFor(node: string, fallback: Connection): Connection {
    const over = this.#over.get(node)
    return over !== undefined && over.status === 'open' ? over : fallback
  }

  /**
   * Runs `stop` on {@link connectionFor}; when the node reserves over another connection before it settles, that
   * attempt is aborted and `stop` runs once more over the new connection (with `signal`, the hop's own deadline).
   */
  async stopVia<T>(
    node: string,
    fallback: Connection,
    signal: AbortSignal | undefined,
    stop: (conn: Connection, signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    const first = this.connectionFor(node, fallback)
    let moved: Connection | undefined
    const ac = new AbortController()
    const waiter = (conn: Connection): void => {
      if (conn === first || moved !== undefined) return
      moved = conn
      ac.abort(new Error(`node ${node} reserved again over a new connection`))
    }
    const set = this.#waiters.get(node) ?? new Set()
    set.add(waiter)
    this.#waiters.set(node, set)
    try {
      const both = signal === undefined ? ac.signal : AbortSignal.any([signal, ac.signal])
      try {
        const got = await stop(first, both)
        if (moved === undefined || got !== undefined) return got
      } catch (err) {
        if (moved === undefined) throw err
      }
    } finally {
      set.delete(waiter)
      if (set.size === 0) this.#waiters.delete(node)
    }
    return stop(moved, signal)
  }
}
