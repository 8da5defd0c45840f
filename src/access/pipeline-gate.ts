/**
 * How many requests of one client connection the access port's full path (Node's HTTP server) works on at once,
 * and how many may wait.
 *
 * Node's server hands over each request a client pipelines as soon as it has parsed it, and writes the answers in
 * order. Without a bound, a client that pipelines thousands of downloads and reads none would have each one open a
 * service stream and fill it: up to `proxy.maxStreamsPerPeer` streams and their answers held for one connection.
 * Here, once {@link PIPELINE_DEPTH} requests of a connection are under way, the next ones wait in order, and each
 * starts when an earlier one has finished. A request whose connection went away while it waited is never started.
 *
 * Pausing the connection cannot hold the requests back: Node's server (24.x) resumes its socket after every request
 * it parses, unless its own internal flag says otherwise. So the waiting requests are bounded instead: a connection
 * with {@link PIPELINE_WAITING} requests waiting and another one coming is closed, which its client sees as an
 * error, and the daemon logs why.
 *
 * The fast path takes a connection's requests one at a time and needs none of this.
 */
import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** Requests of one client connection under way at once on the full path. */
export const PIPELINE_DEPTH = 16

/** Requests of one client connection that may wait for their turn; one more closes the connection. */
export const PIPELINE_WAITING = 1024

/** One connection's requests: how many are under way, and those waiting, in order. */
interface Line {
  active: number
  readonly waiting: (() => void)[]
}

export class PipelineGate {
  readonly #depth: number
  readonly #maxWaiting: number
  readonly #onOverflow: (socket: Duplex) => void
  readonly #lines = new WeakMap<Duplex, Line>()

  /** `onOverflow` is told of each connection closed for pipelining more than the gate lets wait. */
  constructor(opts: { depth?: number; maxWaiting?: number; onOverflow?: (socket: Duplex) => void } = {}) {
    const depth = opts.depth ?? PIPELINE_DEPTH
    const maxWaiting = opts.maxWaiting ?? PIPELINE_WAITING
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`pipeline depth must be ≥ 1, got ${depth}`)
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0) {
      throw new RangeError(`pipeline waiting requests must be ≥ 0, got ${maxWaiting}`)
    }
    this.#depth = depth
    this.#maxWaiting = maxWaiting
    this.#onOverflow = opts.onOverflow ?? (() => {})
  }

  /**
   * Calls `start` now, or once fewer than the depth of `socket`'s requests are under way and those that came
   * before it have started; the request is under way until `res` closes. Past the waiting bound the connection is
   * closed and `start` is never called.
   */
  admit(socket: Duplex, res: ServerResponse, start: () => void): void {
    if (socket.destroyed) return void res.destroy()
    let line = this.#lines.get(socket)
    if (line === undefined) {
      line = { active: 0, waiting: [] }
      this.#lines.set(socket, line)
    }
    const l = line
    const run = (): void => {
      l.active++
      res.once('close', () => this.#finished(socket, l))
      start()
    }
    if (l.active < this.#depth && l.waiting.length === 0) return void run()
    if (l.waiting.length >= this.#maxWaiting) {
      l.waiting.length = 0
      this.#onOverflow(socket)
      socket.destroy()
      res.destroy()
      return
    }
    l.waiting.push(run)
  }

  #finished(socket: Duplex, l: Line): void {
    l.active--
    if (socket.destroyed) {
      l.waiting.length = 0 // nothing of their answers could reach the client
      return
    }
    l.waiting.shift()?.()
  }
}
