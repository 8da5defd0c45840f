/**
 * How many requests of one client connection the access port's full path (Node's HTTP server) works on at once.
 *
 * Node's server hands over each request a client pipelines as soon as it has parsed it, and writes the answers in
 * order. Without a bound, a client that pipelines thousands of downloads and reads none would have each one open a
 * service stream and fill it: up to `proxy.maxStreamsPerPeer` streams and their answers held for one connection.
 * Here, once {@link PIPELINE_DEPTH} requests of a connection are under way, the next ones wait in order with the
 * connection paused (nothing more is read from it), and each starts when an earlier one has finished. A request
 * whose connection went away while it waited is never started.
 *
 * The fast path takes a connection's requests one at a time and needs none of this.
 */
import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** Requests of one client connection under way at once on the full path. */
export const PIPELINE_DEPTH = 16

/** One connection's requests: how many are under way, and those waiting, in order. */
interface Line {
  active: number
  readonly waiting: (() => void)[]
  /** The gate paused the connection and has not resumed it yet. */
  paused: boolean
}

export class PipelineGate {
  readonly #depth: number
  readonly #lines = new WeakMap<Duplex, Line>()

  constructor(depth = PIPELINE_DEPTH) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`pipeline depth must be ≥ 1, got ${depth}`)
    this.#depth = depth
  }

  /**
   * Calls `start` now, or once fewer than the depth of `socket`'s requests are under way and those that came
   * before it have started; the request is under way until `res` closes.
   */
  admit(socket: Duplex, res: ServerResponse, start: () => void): void {
    let line = this.#lines.get(socket)
    if (line === undefined) {
      line = { active: 0, waiting: [], paused: false }
      this.#lines.set(socket, line)
    }
    const l = line
    const run = (): void => {
      l.active++
      res.once('close', () => this.#finished(socket, l))
      start()
    }
    if (l.active < this.#depth && l.waiting.length === 0) return void run()
    l.waiting.push(run)
    // paused again for every request that waits: Node's server resumes a connection it paused itself once its
    // answers drain, which may read more requests while these still wait
    l.paused = true
    socket.pause()
  }

  /** Requests of `socket` waiting for their turn (0 for an unknown connection). */
  waiting(socket: Duplex): number {
    return this.#lines.get(socket)?.waiting.length ?? 0
  }

  #finished(socket: Duplex, l: Line): void {
    l.active--
    if (socket.destroyed) {
      l.waiting.length = 0 // nothing of their answers could reach the client
      return
    }
    const next = l.waiting.shift()
    if (next !== undefined) return void next()
    if (l.paused) {
      l.paused = false
      socket.resume()
    }
  }
}
