/**
 * Service streams of the gateway's fast path (fast-path.ts), idle ones kept per node and service for the next
 * request. A stream carries one exchange at a time; its listeners are attached once, for its whole life, and
 * hand its bytes and its end to whoever uses it now ({@link UpstreamUser}). A stream that sends anything while
 * idle, or ends, is dropped from the pool.
 */
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { KEEP_ALIVE_HINT_MARGIN_MS, type ResponseHead } from '../../http/http1.ts'
import { STREAM_READ_BUFFER } from '../../p2p/pipe.ts'
import { endedAlready } from '../../p2p/stream-ended.ts'

/** The exchange a stream currently serves. */
export interface UpstreamUser {
  onUpstreamData(buf: Uint8Array): void
  /** The service closed its side (FIN), or the stream closed or was reset (`error`). */
  onUpstreamEnd(error?: Error): void
}

/** How long a stream let go may stay half-open before it is reset, ms. */
const LINGER_MS = 10_000

export class Upstream {
  readonly stream: Stream
  readonly key: string
  user: UpstreamUser | undefined
  /** Ended, reset or closed: never to be used again. */
  dead = false
  /** When an idle stream is let go, ms since the epoch. */
  idleUntil = 0
  /** The last response head the service sent on this stream: the next one is most often the same bytes. */
  lastHead: ResponseHead | undefined
  readonly #pool: UpstreamPool

  constructor(stream: Stream, key: string, pool: UpstreamPool) {
    this.stream = stream
    this.key = key
    this.#pool = pool
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, STREAM_READ_BUFFER)
    stream.addEventListener('message', this.#onMessage)
    stream.addEventListener('end', this.#onEnd)
    stream.addEventListener('close', this.#onClose)
    // ended while the host's answer was read (a service that resets at once): its 'close' will not come again,
    // and the pool must not hand it out
    if (endedAlready(stream) !== undefined) this.dead = true
  }

  readonly #onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    const buf = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    if (this.user !== undefined) this.user.onUpstreamData(buf)
    else this.abort(new Error('the service sent data while no request was pending'))
  }

  readonly #onEnd = (): void => {
    // a reset emits 'end' before its 'close' with the error: that is not the service's FIN
    const s = this.stream.status
    if (s === 'reset' || s === 'aborted') return
    this.#gone(undefined)
    // the service's FIN: nothing more can come on the stream, so this side ends it too (else it stays half open on
    // both nodes, with the serving node's connection to the service, for as long as the daemons run)
    this.letGo()
  }

  readonly #onClose = (evt: Event & { error?: Error }): void => this.#gone(evt.error ?? undefined)

  #gone(error: Error | undefined): void {
    if (this.dead && error === undefined) return
    this.dead = true
    this.#pool.forget(this)
    const user = this.user
    this.user = undefined
    user?.onUpstreamEnd(error)
  }

  /**
   * Lets an idle stream go: a FIN, so the service sees a clean close, and a reset if the stream is still open
   * `lingerMs` later. No more events reach a user.
   */
  letGo(lingerMs = LINGER_MS): void {
    this.user = undefined
    this.dead = true
    this.#pool.forget(this)
    const stream = this.stream
    if (stream.status !== 'open') return
    stream.close().catch((err: Error) => stream.abort(err))
    setTimeout(() => {
      if (stream.status === 'open' || stream.status === 'closing') stream.abort(new Error('closed by the gateway'))
    }, lingerMs).unref()
  }

  /** Resets the stream; no more events reach the user. */
  abort(err: Error): void {
    this.user = undefined
    this.dead = true
    this.#pool.forget(this)
    const s = this.stream.status
    if (s === 'open' || s === 'closing') this.stream.abort(err)
  }
}

export class UpstreamPool {
  readonly #idle = new Map<string, Upstream[]>()
  readonly #maxIdlePerKey: number
  readonly #idleTimeoutMs: number
  #sweeper: NodeJS.Timeout | undefined
  #count = 0

  constructor(opts: { maxIdlePerKey: number; idleTimeoutMs: number }) {
    this.#maxIdlePerKey = opts.maxIdlePerKey
    this.#idleTimeoutMs = opts.idleTimeoutMs
  }

  /** An idle stream for `key`, the most recently used first. */
  take(key: string): Upstream | undefined {
    const list = this.#idle.get(key)
    if (list === undefined) return undefined
    let u = list.pop()
    while (u?.dead) u = list.pop()
    if (list.length === 0) this.#idle.delete(key)
    if (u !== undefined) this.#count--
    return u
  }

  /**
   * Keeps a stream whose exchange finished cleanly for the next request to the same service. `idleMs`: how long the
   * service may have been idle on it already (its last response written while a slow client still read it).
   */
  put(u: Upstream, idleMs = 0): void {
    if (u.dead) return
    let list = this.#idle.get(u.key)
    if (list === undefined) {
      list = []
      this.#idle.set(u.key, list)
    }
    // the service's own idle timer started when it wrote the last response: leave it a margin
    const hint = u.lastHead?.keepAliveSec
    const keepMs =
      (hint === undefined
        ? this.#idleTimeoutMs
        : Math.min(this.#idleTimeoutMs, hint * 1000 - KEEP_ALIVE_HINT_MARGIN_MS)) - idleMs
    if (list.length >= this.#maxIdlePerKey || keepMs <= 0) {
      u.letGo()
      return
    }
    u.idleUntil = Date.now() + keepMs
    list.push(u)
    this.#count++
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(
        () => this.#sweep(),
        Math.max(100, Math.min(1000, Math.floor(this.#idleTimeoutMs / 4))),
      )
      this.#sweeper.unref()
    }
  }

  /** Drops a stream that ended from the idle lists (no-op when it is in use). */
  forget(u: Upstream): void {
    const list = this.#idle.get(u.key)
    if (list === undefined) return
    const i = list.indexOf(u)
    if (i < 0) return
    list.splice(i, 1)
    this.#count--
    if (list.length === 0) this.#idle.delete(u.key)
  }

  #sweep(): void {
    const now = Date.now()
    for (const list of [...this.#idle.values()]) {
      for (const u of list.filter((x) => x.idleUntil <= now)) u.letGo()
    }
    if (this.#count === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
    }
  }

  /** Idle streams, for status and tests. */
  get idle(): number {
    return this.#count
  }

  close(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const list of [...this.#idle.values()]) for (const u of [...list]) u.abort(new Error('gateway closed'))
    this.#idle.clear()
    this.#count = 0
  }
}
