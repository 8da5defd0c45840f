/**
 * A pool of HTTP/1.1 connections per node and service for the gateway and the HTTP proxy: each connection is a
 * `/warren/service/1.0.0` stream wrapped in a {@link StreamSocket}, kept alive between requests by an undici
 * `Pool`. A new stream is opened only when every pooled one is busy; idle ones are closed after a while (or
 * sooner when the service's `Keep-Alive: timeout=` hint says so).
 *
 * Why undici and not Node's `http.Agent`: the gateway's own CPU time per proxied request was dominated by Node's
 * HTTP client (ClientRequest, Agent bookkeeping, socket listeners per request); undici's dispatcher costs well
 * under half as much per request for the same work (measured in docs/performance.md).
 */
import { createRequire } from 'node:module'
import type { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import type { Dispatcher, Pool } from 'undici'
import { KEEP_ALIVE_HINT_MARGIN_MS } from '../http/http1.ts'
import { StreamSocket } from '../http/stream-socket.ts'
import { isLetGo, watchHeldBackResponses } from './held-back.ts'

/** undici's Pool, loaded with the first pool: a daemon whose gateway serves nothing never loads undici. */
let PoolClass: typeof Pool | undefined
const poolClass = (): typeof Pool =>
  (PoolClass ??= (createRequire(import.meta.url)('undici') as typeof import('undici')).Pool)

/**
 * undici closing a pooled connection for a normal reason (an InformationalError: `socket idle timeout` for an idle
 * one, `reset` once a response the service marked `Connection: close` or ended with its close is complete): no
 * failure, so the service stream ends with a FIN instead of a reset, and no error is logged for it.
 */
export const isCleanClose = (err: Error): boolean =>
  ((err as { code?: string }).code === 'UND_ERR_INFO' &&
    (err.message === 'socket idle timeout' || err.message === 'reset')) ||
  isLetGo(err)

export type OpenStream = (node: string, service: string, opts: { signal: AbortSignal }) => Promise<Stream>

export interface ServicePoolsOptions {
  /** Streams per node and service at most; further requests wait in the pool's queue. */
  maxSockets: number
  /** Idle time after which a pooled stream is closed, ms. */
  idleTimeoutMs: number
  /** Time to open a stream (dial + the host's answer), ms. */
  openTimeoutMs: number
  /** Largest response head accepted from a service, bytes. */
  maxHeaderBytes: number
}

export class ServicePools {
  readonly #open: OpenStream
  readonly #opts: ServicePoolsOptions
  readonly #pools = new Map<string, Pool>()

  constructor(open: OpenStream, opts: ServicePoolsOptions) {
    this.#open = open
    this.#opts = opts
  }

  /** The pool for `service` on `node` (a canonical node id, so aliases share a pool). */
  poolFor(node: string, service: string): Dispatcher {
    const key = `${node}/${service}`
    let pool = this.#pools.get(key)
    if (pool === undefined) {
      watchHeldBackResponses(this.#opts.idleTimeoutMs, KEEP_ALIVE_HINT_MARGIN_MS)
      const open = this.#open
      const openTimeoutMs = this.#opts.openTimeoutMs
      pool = new (poolClass())(`http://${service}.warren`, {
        connections: this.#opts.maxSockets,
        pipelining: 1,
        keepAliveTimeout: this.#opts.idleTimeoutMs,
        keepAliveMaxTimeout: this.#opts.idleTimeoutMs,
        keepAliveTimeoutThreshold: KEEP_ALIVE_HINT_MARGIN_MS,
        maxHeaderSize: this.#opts.maxHeaderBytes,
        // the gateway times the response head itself (from the request's arrival, stream opening included); a
        // streamed body may pause for as long as the service likes, as with a direct connection
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: (_opts, callback) => {
          open(node, service, { signal: AbortSignal.timeout(openTimeoutMs) }).then(
            (stream) => callback(null, new StreamSocket(stream, { closesCleanly: isCleanClose }) as Duplex as never),
            (err: Error) => callback(err, null),
          )
        },
      })
      this.#pools.set(key, pool)
    }
    return pool
  }

  /** Pools, open streams and idle ones among them, for status and tests. */
  stats(): { pools: number; sockets: number; free: number } {
    let sockets = 0
    let free = 0
    for (const p of this.#pools.values()) {
      sockets += p.stats.connected
      free += p.stats.free
    }
    return { pools: this.#pools.size, sockets, free }
  }

  destroy(): void {
    for (const p of this.#pools.values()) void p.destroy().catch(() => {})
    this.#pools.clear()
  }
}
