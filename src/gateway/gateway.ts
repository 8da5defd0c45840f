/**
 * The HTTP gateway: requests to `/http/<node>/<service>/<path>` (and Kubo's `/p2p/…` form) on the access port,
 * and absolute-form requests through the HTTP proxy (`GET http://web.laptop.warren/x`), carried as HTTP/1.1 over
 * pooled `/warren/service/1.0.0` streams; Upgrade requests (WebSockets) over a fresh stream each.
 *
 * Upstream headers: `Host: <service>.<node>.warren` (gateway) or the client's Host (proxy), `X-Forwarded-For`,
 * `-Proto`, `-Host`, `Forwarded`, and for the gateway `X-Forwarded-Prefix: /http/<node>/<service>`; a `Location`
 * that starts with `/` is rewritten under that prefix so redirects stay inside the gateway.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { addForwarded, type RawHeaders, setHeader, stripHopByHop } from '../http/forward-headers.ts'
import { sendHttpError, writeRawHttpError } from '../http/http-errors.ts'
import { proxyUpgrade } from '../http/reverse-proxy.ts'
import { StreamSocket } from '../http/stream-socket.ts'
import type { Logger } from '../log.ts'
import type { GatewayBackend, NodeIds } from './backend.ts'
import { forwardOverPool, type PooledUpstream } from './pooled-request.ts'
import { ServicePools } from './service-pools.ts'

export interface GatewayOptions {
  tld: string
  /** Pooled streams per node and service at most (the per-node limit itself is the backend's). */
  maxStreamsPerPeer: number
  responseTimeoutMs: number
  maxHeaderBytes: number
  openTimeoutMs: number
  /** Exchanges that end abnormally are logged here at `warn`. */
  log?: Logger
}

/** Where one request goes. */
export interface ForwardSpec {
  node: string
  service: string
  path: string
  /** Host header upstream; default `<service>.<base36 id>.<tld>`. */
  host?: string
  /** Gateway prefix (`/http/<node>/<service>`), absent for proxy requests and the subdomain gateway. */
  prefix?: string
  /** A browser sent it (Sec-Fetch-* or Origin): a ticket must not make the node dial addresses it does not know. */
  browser?: boolean
}

export class Gateway {
  readonly #backend: GatewayBackend
  readonly #opts: GatewayOptions
  readonly #pools: ServicePools

  constructor(backend: GatewayBackend, opts: GatewayOptions) {
    this.#backend = backend
    this.#opts = opts
    this.#pools = new ServicePools((node, service, o) => backend.openService(node, service, o), {
      maxSockets: opts.maxStreamsPerPeer,
      idleTimeoutMs: 30_000,
      openTimeoutMs: opts.openTimeoutMs,
      maxHeaderBytes: opts.maxHeaderBytes,
    })
  }

  /** Takes one of the backend's stream slots for the node `peerId`, or throws ERR_TOO_MANY_STREAMS. */
  acquire(peerId: string): () => void {
    return this.#backend.acquire(peerId)
  }

  /** Resolves the node and takes a stream slot; on failure calls `refuse` and returns undefined. */
  #admit(spec: ForwardSpec, refuse: (err: unknown) => void): { ids: NodeIds; release: () => void } | undefined {
    try {
      const ids = this.#backend.resolveNode(spec.node, spec.browser === true ? { learn: false } : undefined)
      return { ids, release: this.#backend.acquire(ids.id) }
    } catch (err) {
      refuse(err)
      return undefined
    }
  }

  /** Carries `req` to `spec`; errors become error pages. */
  forward(req: IncomingMessage, res: ServerResponse, spec: ForwardSpec): void {
    const admitted = this.#admit(spec, (err) => {
      req.resume()
      sendHttpError(res, err)
    })
    if (admitted === undefined) return
    const { ids, release } = admitted
    const upstream: PooledUpstream = {
      pool: this.#pools.poolFor(ids.id, spec.service),
      path: spec.path,
      headers: this.#headers(req, spec, ids.base36, false),
      responseTimeoutMs: this.#opts.responseTimeoutMs,
      describe: `service "${spec.service}" on node ${ids.id}`,
    }
    if (this.#opts.log !== undefined) upstream.log = this.#opts.log
    const prefix = spec.prefix
    if (prefix !== undefined) upstream.rewriteResponse = (raw) => rewriteLocation(raw, prefix)
    void forwardOverPool(req, res, upstream).finally(release)
  }

  /** Carries an Upgrade request to `spec` over a fresh stream. */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, spec: ForwardSpec): void {
    const admitted = this.#admit(spec, (err) => writeRawHttpError(socket, err))
    if (admitted === undefined) return
    const { ids, release } = admitted
    const open = async (): Promise<Duplex> => {
      const stream = await this.#backend.openService(ids.id, spec.service, {
        signal: AbortSignal.timeout(this.#opts.openTimeoutMs),
      })
      return new StreamSocket(stream)
    }
    void proxyUpgrade(req, socket, head, { open, path: spec.path, headers: this.#headers(req, spec, ids.base36, true) })
      .catch(() => socket.destroy())
      .finally(release)
  }

  #headers(req: IncomingMessage, spec: ForwardSpec, base36: string, upgrade: boolean): RawHeaders {
    return this.upstreamHeaders(req.rawHeaders, req.socket.remoteAddress, req.headers.host, spec, base36, upgrade)
  }

  /** Request headers for the service: hop-by-hop ones dropped, forwarding headers, Host and the prefix added. */
  upstreamHeaders(
    rawHeaders: RawHeaders,
    clientIp: string | undefined,
    host: string | undefined,
    spec: ForwardSpec,
    base36: string,
    upgrade: boolean,
  ): RawHeaders {
    let raw = stripHopByHop(rawHeaders, { upgrade, keepChunked: upgrade })
    raw = addForwarded(raw, { clientIp: clientIp ?? '127.0.0.1', host, proto: 'http' })
    raw = setHeader(raw, 'Host', spec.host ?? `${spec.service}.${base36}.${this.#opts.tld}`)
    if (spec.prefix !== undefined) raw = setHeader(raw, 'X-Forwarded-Prefix', spec.prefix)
    return raw
  }

  /** Node name → canonical ids; throws ERR_UNKNOWN_PEER, ERR_BAD_NODE_ID … (ERR_UNKNOWN_ADDRESSES: see GatewayBackend) */
  resolveNode(name: string, opts?: { learn?: boolean }): NodeIds {
    return this.#backend.resolveNode(name, opts)
  }

  stats(): { pools: number; sockets: number; free: number } {
    return this.#pools.stats()
  }

  close(): void {
    this.#pools.destroy()
  }
}

/** `Location: /login` → `Location: /http/<node>/<service>/login`, so redirects stay inside the gateway. */
export function rewriteLocation(raw: RawHeaders, prefix: string): RawHeaders {
  const out = [...raw]
  for (let i = 0; i < out.length; i += 2) {
    const v = out[i + 1]!
    if (out[i]!.toLowerCase() === 'location' && v.startsWith('/') && !v.startsWith('//')) out[i + 1] = prefix + v
  }
  return out
}
