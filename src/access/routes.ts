/**
 * Where a request to the access port goes, decided from its request line and headers (the one router of the
 * access port; access-server.ts carries out the decision, the gateway's fast path asks it through
 * {@link AccessRouter.fastRoute}):
 *
 * - `CONNECT web.laptop.warren:443`                    → tunnel to service web
 * - `GET http://web.laptop.warren/x` (absolute form)   → request carried to service web (HTTP proxy)
 * - `ANY /http/<node>/<service>/…`, `/p2p/<node>/x/…`  → path gateway
 * - `Host: <service>.<node>.localhost:<port>`          → subdomain gateway
 * - `GET /proxy.pac`                                   → PAC file
 * - `Host: warren.localhost:<port>`, `GET /metrics`     → the node's own pages (local-pages.ts), when it serves them
 * - `Upgrade: websocket` on a gateway or proxy request → the same service, over a fresh stream
 *
 * Origin-form requests (a path, not a proxy request) must name the access port in `Host` and pass the origin
 * rules (src/gateway/origins.ts) before any node name is resolved; with `proxy.auth`, proxy requests carry
 * credentials in `Proxy-Authorization` (407 without), origin-form ones may use `Authorization` (401 without).
 */
import { isIP } from 'node:net'
import { toWarrenError, WarrenError } from '../errors.ts'
import type { GatewayBackend } from '../gateway/backend.ts'
import { removeDotSegments } from '../gateway/dot-segments.ts'
import type { ForwardSpec } from '../gateway/gateway.ts'
import {
  browserSignals,
  type HostClass,
  type HostPolicy,
  nodeLabel,
  pathGatewayVerdict,
  subdomainUrl,
  subdomainVerdict,
} from '../gateway/origins.ts'
import { isGatewayPath, parseGatewayPath } from '../gateway/paths.ts'
import type { RawHeaders } from '../http/forward-headers.ts'
import type { RequestHead } from '../http/http1.ts'
import { type AuthHeaders, basicMatches, type Credentials, checkHttpAuth } from './auth.ts'
import { isPagesHost, type PagesScope, pagesRefusal } from './local-pages.ts'
import { PAC_PATH } from './pac.ts'
import { parseAuthority, parseProxyUrl, unknownPage } from './request-targets.ts'
import type { AddressTable } from './service-addresses.ts'
import { serviceForHost } from './tunnels.ts'

/** A request as the router sees it. */
export interface AccessRequest {
  method: string
  /** The request target: a path, an absolute URL, or (CONNECT) `host:port`. */
  target: string
  host: string | undefined
  raw: Readonly<RawHeaders>
  headers: AuthHeaders
}

/** Answer with this error page; `status` overrides the code's own (401 for credentials on origin-form requests). */
export type Refusal = { kind: 'refuse'; error: WarrenError; status?: number }
/** Carry the request (or Upgrade) to a service; `ownCredentials`: drop `Authorization`, it is the access port's. */
export type Forward = { kind: 'forward'; spec: ForwardSpec; ownCredentials: boolean }

export type RequestRoute =
  | Forward
  | { kind: 'redirect'; status: 302 | 307; location: string }
  | { kind: 'pac' }
  | { kind: 'page'; scope: PagesScope }
  | Refusal
export type UpgradeRoute = Forward | Refusal
export type ConnectRoute = { kind: 'tunnel'; host: string } | Refusal

export interface RouterOptions {
  tld: string
  auth?: Credentials | undefined
  gatewayEnabled: boolean
  policy: HostPolicy
  addresses: AddressTable
  backend: Pick<GatewayBackend, 'resolveNode'>
  /** The node's own pages (local-pages.ts): whether a handler is in place, and the port they must be asked on. */
  pages?: { ready(): boolean; port(): number }
}

/** Request targets whose forward spec is kept (see #targetSpec), at most. */
const TARGET_CACHE_MAX = 1024
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\//i
const METRICS_PATH = '/metrics'

export function disabledGateway(): WarrenError {
  return new WarrenError(
    'ERR_GATEWAY_DISABLED',
    'the HTTP gateway is disabled on this node (gateway.enabled is false)',
    {
      hint: 'Set "gateway": { "enabled": true } in config.json, or use the proxy (http://<service>.<node>.warren/).',
    },
  )
}

export class AccessRouter {
  readonly #opts: RouterOptions
  /**
   * Forward specs by request target, for the parts of a decision that depend on the target alone (a gateway path,
   * a proxy URL naming a host): the same targets come again and again (keep-alive clients, polling), and parsing
   * them is most of a plain request's routing cost.
   */
  readonly #targets = new Map<string, ForwardSpec>()

  constructor(opts: RouterOptions) {
    this.#opts = opts
  }

  /** The route for a plain request; every refusal is a `refuse` route with the exact error page. */
  request(req: AccessRequest): RequestRoute {
    try {
      return ABSOLUTE_FORM.test(req.target) ? this.#proxy(req) : this.#origin(req)
    } catch (err) {
      return { kind: 'refuse', error: toWarrenError(err) }
    }
  }

  /** The route for an Upgrade request (WebSocket): a service, or a refusal (the access port has no pages for one). */
  upgrade(req: AccessRequest): UpgradeRoute {
    const r = this.request(req)
    if (r.kind === 'forward' || r.kind === 'refuse') return r
    return { kind: 'refuse', error: unknownPage(req.target, this.#opts.tld) }
  }

  /** The route for a CONNECT request: a tunnel to the service its `host:port` names, or a refusal. */
  connect(req: AccessRequest): ConnectRoute {
    try {
      const authErr = checkHttpAuth(req.headers, this.#opts.auth, false)
      if (authErr !== undefined) return { kind: 'refuse', error: authErr }
      return { kind: 'tunnel', host: parseAuthority(req.target).host }
    } catch (err) {
      return { kind: 'refuse', error: toWarrenError(err) }
    }
  }

  /** For the gateway's fast path: the forward spec of a plain request, or undefined (the full path answers it). */
  fastRoute(head: RequestHead): ForwardSpec | undefined {
    const r = this.request({ method: head.method, target: head.target, host: head.host, raw: head.raw, headers: {} })
    return r.kind === 'forward' && !r.ownCredentials ? r.spec : undefined
  }

  /** Absolute form through the HTTP proxy: `GET http://web.laptop.warren/x`. */
  #proxy(req: AccessRequest): RequestRoute {
    const authErr = checkHttpAuth(req.headers, this.#opts.auth, false)
    if (authErr !== undefined) return { kind: 'refuse', error: authErr }
    return { kind: 'forward', spec: this.#targetSpec(req.target, true), ownCredentials: false }
  }

  /** Origin form: Host and credentials, then the subdomain gateway, the path gateway or the access port's pages. */
  #origin(req: AccessRequest): RequestRoute {
    const pages = this.#opts.pages?.ready() === true ? this.#opts.pages : undefined
    if (pages !== undefined && isPagesHost(req.host)) return this.#pages(req, pages.port())
    // a foreign Host (DNS rebinding) is refused first: not even a login prompt under someone else's name
    const hc: HostClass = this.#opts.policy.classify(req.host)
    const auth = this.#opts.auth
    const authErr = checkHttpAuth(req.headers, auth, true)
    if (authErr !== undefined) return { kind: 'refuse', error: authErr, status: 401 }
    const ownCredentials = auth !== undefined && basicMatches(req.headers.authorization, auth)
    const host = req.host!
    const sig = browserSignals(req.raw)
    if (hc.kind === 'service') {
      const v = subdomainVerdict(req.method, sig, host)
      if (v.kind === 'refuse') return { kind: 'refuse', error: v.error }
      if (!this.#opts.gatewayEnabled) return { kind: 'refuse', error: disabledGateway() }
      const path = req.target.startsWith('/') ? removeDotSegments(req.target) : '/'
      const spec = { node: hc.node, service: hc.service, path, browser: sig.browser }
      return { kind: 'forward', spec, ownCredentials }
    }
    if (!isGatewayPath(req.target)) {
      const t = req.target
      if (t === PAC_PATH || t.startsWith(`${PAC_PATH}?`)) return { kind: 'pac' }
      // Prometheus asks for 127.0.0.1:<port>/metrics; browsers read the node's pages on their own origin only
      if (pages !== undefined && !sig.browser && (t === METRICS_PATH || t.startsWith(`${METRICS_PATH}?`))) {
        return { kind: 'page', scope: 'metrics' }
      }
      return { kind: 'refuse', error: unknownPage(t, this.#opts.tld) }
    }
    if (!this.#opts.gatewayEnabled) return { kind: 'refuse', error: disabledGateway() }
    const spec = this.#targetSpec(req.target, false)
    if (!sig.browser) return { kind: 'forward', spec, ownCredentials }
    const v = pathGatewayVerdict(req.method, sig, host)
    if (v.kind === 'refuse') return { kind: 'refuse', error: v.error }
    if (v.kind === 'redirect') {
      const ids = this.#opts.backend.resolveNode(spec.node, { learn: false })
      const label = nodeLabel(spec.node) ?? ids.base36
      return { kind: 'redirect', status: v.status, location: subdomainUrl(hc, spec.service, label, spec.path) }
    }
    return { kind: 'forward', spec: { ...spec, browser: true }, ownCredentials }
  }

  /** `warren.localhost:<port>`: the port and the browser's origin first (no login prompt for others), then credentials. */
  #pages(req: AccessRequest, port: number): RequestRoute {
    const refusal = pagesRefusal(req.host!, port, browserSignals(req.raw))
    if (refusal !== undefined) return { kind: 'refuse', error: refusal }
    const authErr = checkHttpAuth(req.headers, this.#opts.auth, true)
    if (authErr !== undefined) return { kind: 'refuse', error: authErr, status: 401 }
    return { kind: 'page', scope: 'all' }
  }

  /**
   * The forward spec of a gateway path or a proxy URL; throws ERR_BAD_GATEWAY_PATH, ERR_BAD_REQUEST,
   * ERR_NOT_WARREN_NAME, ERR_BAD_NAME. Kept by target, except a proxy URL naming a service address (an IP from
   * the DNS server's table, which may change).
   */
  #targetSpec(target: string, proxy: boolean): ForwardSpec {
    const hit = this.#targets.get(target)
    if (hit !== undefined) return hit
    let spec: ForwardSpec
    if (proxy) {
      const u = parseProxyUrl(target)
      const { node, service } = serviceForHost(u.hostname, this.#opts)
      spec = { node, service, path: `${u.pathname}${u.search}`, host: u.host }
      if (isIP(u.hostname.replace(/^\[|\]$/g, '')) !== 0) return spec
    } else {
      const t = parseGatewayPath(target)
      spec = { node: t.node, service: t.service, path: t.path, prefix: t.prefix }
    }
    if (this.#targets.size >= TARGET_CACHE_MAX) this.#targets.clear()
    this.#targets.set(target, spec)
    return spec
  }
}
