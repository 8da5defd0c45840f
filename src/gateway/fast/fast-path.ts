/**
 * The gateway's fast path: plain HTTP/1.1 requests to `/http/<node>/<service>/…` (and `/p2p/…`, and absolute-form
 * proxy requests `GET http://web.<node>.warren/…`) carried without Node's HTTP server and client.
 *
 * Per client connection, requests are taken one at a time: the head is parsed (http1.ts) and rewritten exactly
 * as the full path does (Gateway.upstreamHeaders: hop-by-hop headers dropped, X-Forwarded-*, Forwarded, Host,
 * X-Forwarded-Prefix), the body is passed on as it came (Content-Length or chunked, framed only to find its end),
 * the response head is rewritten (hop-by-hop headers dropped, `Location` under the prefix, Date and the client
 * connection's keep-alive headers added) and its body passed back as it came. Service streams come from a pool
 * per node and service (upstreams.ts); a keep-alive client keeps getting the same stream.
 *
 * Anything else — Upgrade, Expect, HTTP/1.0, odd framing, malformed or over-size heads, auth, unknown pages, bad
 * names, refused peers, the stream limit — is handed over, at a request boundary, to the full path (Node's
 * `http.Server` in access-server.ts) with the unparsed bytes, and the connection stays there. Errors after the
 * request was taken (the stream could not be opened, the service's answer was bad, late or cut) get the same
 * pages the full path sends.
 *
 * A response cut after its head went out (the stream was reset, the service or its node went away, the body was
 * malformed) ends with the client connection destroyed before the body's end — a short Content-Length body or a
 * chunked body without its last chunk — so the client always sees an error. A request body cut by the client
 * (its connection ends or resets mid-body) resets the stream, so the service sees an error too.
 */

import type { Socket } from 'node:net'
import { KEEP_ALIVE_SEC } from '../../http/http1.ts'
import { FastConnection } from './connection.ts'
import type { FastPathContext, FastPathOptions } from './types.ts'
import { UpstreamPool } from './upstreams.ts'

export type { FastPathOptions } from './types.ts'

/** The fast path of one access port: its client connections and its pool of service streams. */
export class FastPath implements FastPathContext {
  readonly opts: FastPathOptions
  readonly pool: UpstreamPool
  readonly #connections = new Set<FastConnection>()

  constructor(opts: FastPathOptions) {
    this.opts = opts
    this.pool = new UpstreamPool({ maxIdlePerKey: opts.maxStreamsPerPeer, idleTimeoutMs: KEEP_ALIVE_SEC * 1000 })
  }

  /** Takes a new client connection whose first bytes are `first`. */
  accept(socket: Socket, first: Buffer): void {
    const c = new FastConnection(this, socket)
    this.#connections.add(c)
    socket.once('close', () => this.#connections.delete(c))
    c.onData(first)
  }

  close(): void {
    for (const c of this.#connections) c.destroy()
    this.pool.close()
  }
}
