/**
 * The relay's book of circuits (relayed connections): how many are open per node and in total (for the caps), the
 * bytes each carried, and the duration limit of bounded ones.
 *
 * The duration limit is enforced here rather than by libp2p: the js circuit relay server treats `limit.duration` as
 * milliseconds while the protocol (and every client) reads seconds, so Warren advertises only the data limit to
 * libp2p and closes bounded circuits itself when their time is up (see docs/relay.md, "the upstream bug").
 */
import type { Stream, StreamCloseEvent } from '@libp2p/interface'
import type { CircuitLimit } from '../info.ts'

export interface CircuitInfo {
  src: string
  dst: string
  /** ms since the epoch. */
  startedAt: number
  /** Bytes relayed so far, both directions. */
  bytes: number
  /** When the relay closes it (duration limit), ms since the epoch; absent for unlimited circuits. */
  closesAt?: number
  /** The limits it was opened with; absent for unlimited circuits. */
  limit?: CircuitLimit
}

interface Circuit extends CircuitInfo {
  streams: Stream[]
}

/**
 * Why a circuit ended: `limit` (its data or duration limit was reached), `error` (a stream was aborted or reset for
 * another reason, the relay's shutdown included), `closed` (its streams closed cleanly).
 */
export type CircuitEndCause = 'limit' | 'closed' | 'error'

/** The name of the error js-libp2p's relay server aborts a circuit with at its data limit. */
const DATA_LIMIT_ERROR = 'TransferLimitError'

/** A place held for a circuit while it is being opened; commit it once both streams exist, else release it. */
export interface CircuitSlot {
  commit(src: Stream, dst: Stream, limit: CircuitLimit | undefined): void
  release(): void
}

export class CircuitTracker {
  readonly #open = new Set<Circuit>()
  readonly #perNode = new Map<string, number>()
  #pending = 0
  #bytesClosed = 0
  #opened = 0
  /** Circuits closed at their duration limit by {@link sweep}. */
  readonly #timedOut = new WeakSet<Circuit>()
  /** Circuits that ended since start, by cause. */
  readonly ended: Record<CircuitEndCause, number> = { limit: 0, closed: 0, error: 0 }
  #timer: NodeJS.Timeout | undefined
  readonly #log: (message: string) => void

  constructor(opts: { log?: (message: string) => void; sweepMs?: number } = {}) {
    this.#log = opts.log ?? (() => {})
    this.#timer = setInterval(() => this.sweep(Date.now()), opts.sweepMs ?? 250)
    this.#timer.unref()
  }

  /** Circuits open or being opened. */
  get total(): number {
    return this.#open.size + this.#pending
  }

  /** Circuits open or being opened with `peer` at either end. */
  perNode(peer: string): number {
    return this.#perNode.get(peer) ?? 0
  }

  #count(peer: string, delta: number): void {
    const n = (this.#perNode.get(peer) ?? 0) + delta
    if (n <= 0) this.#perNode.delete(peer)
    else this.#perNode.set(peer, n)
  }

  /** Holds a place for a circuit from `src` to `dst` (counted by the caps from now on). */
  admit(src: string, dst: string): CircuitSlot {
    this.#pending++
    this.#count(src, 1)
    this.#count(dst, 1)
    let settled = false
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      this.#pending--
      return true
    }
    return {
      release: () => {
        if (!settle()) return
        this.#count(src, -1)
        this.#count(dst, -1)
      },
      commit: (srcStream, dstStream, limit) => {
        if (!settle()) return
        const now = Date.now()
        const circuit: Circuit = { src, dst, startedAt: now, bytes: 0, streams: [srcStream, dstStream] }
        if (limit !== undefined) {
          circuit.limit = { ...limit }
          circuit.closesAt = now + limit.durationSec * 1000
        }
        this.#open.add(circuit)
        this.#opened++
        for (const s of circuit.streams) countSent(s, (n) => (circuit.bytes += n))
        let ended = false
        const end = (evt?: Event): void => {
          if (ended) return
          ended = true
          const error = (evt as StreamCloseEvent | undefined)?.error
          const limitHit = this.#timedOut.has(circuit) || error?.name === DATA_LIMIT_ERROR
          this.ended[limitHit ? 'limit' : error === undefined ? 'closed' : 'error']++
          this.#open.delete(circuit)
          this.#bytesClosed += circuit.bytes
          this.#count(src, -1)
          this.#count(dst, -1)
        }
        for (const s of circuit.streams) {
          if (s.status !== 'open') end()
          else s.addEventListener('close', end, { once: true })
        }
      },
    }
  }

  /** Closes bounded circuits whose time is up. */
  sweep(now: number): void {
    for (const c of this.#open) {
      if (c.closesAt === undefined || now < c.closesAt) continue
      const secs = Math.round((c.closesAt - c.startedAt) / 1000)
      this.#log(`closing the relayed connection ${c.src} → ${c.dst}: its duration limit of ${secs} s is reached`)
      const err = new Error(`the relay's duration limit of ${secs} s for this relayed connection is reached`)
      this.#timedOut.add(c)
      for (const s of c.streams) s.abort(err)
      c.closesAt = undefined
    }
  }

  list(): CircuitInfo[] {
    return [...this.#open].map(({ streams: _, ...info }) => ({ ...info }))
  }

  /** Bytes relayed since start, open and closed circuits together. */
  get bytesRelayed(): number {
    let live = 0
    for (const c of this.#open) live += c.bytes
    return this.#bytesClosed + live
  }

  /** Circuits opened since start. */
  get opened(): number {
    return this.#opened
  }

  /** Stops the sweep and aborts every open circuit. */
  close(reason: string): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    const err = new Error(reason)
    for (const c of this.#open) for (const s of c.streams) s.abort(err)
  }
}

/**
 * Counts what is written to a stream by wrapping its `send`. Listening to `message` events instead would take data
 * from the relay's own pipe when it is not yet listening, so the bytes are counted on the way out.
 */
function countSent(stream: Stream, add: (n: number) => void): void {
  const send = stream.send.bind(stream)
  stream.send = (data) => {
    add(data.byteLength)
    return send(data)
  }
}
