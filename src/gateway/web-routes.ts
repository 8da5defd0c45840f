/**
 * Where an origin-form request to the access port goes (a request whose target is a path, not a proxy request):
 * the subdomain gateway (`Host: <service>.<node>.localhost:<port>`), the path gateway (`/http/…`, `/p2p/…`), or
 * the access port's own pages. Host names, origins and Fetch Metadata are checked here (origins.ts), before any
 * node name is resolved.
 */
import { WarrenError } from '../errors.ts'
import type { RawHeaders } from '../http/forward-headers.ts'
import { removeDotSegments } from './dot-segments.ts'
import type { ForwardSpec, Gateway } from './gateway.ts'
import {
  browserSignals,
  type HostClass,
  type HostPolicy,
  nodeLabel,
  pathGatewayVerdict,
  subdomainUrl,
  subdomainVerdict,
} from './origins.ts'
import { isGatewayPath, parseGatewayPath } from './paths.ts'

export type WebRoute =
  | { kind: 'forward'; spec: ForwardSpec }
  | { kind: 'redirect'; status: 302 | 307; location: string }
  /** Not a gateway request: the access port's own pages (PAC file, error pages). */
  | { kind: 'local' }
  /** A gateway request, but gateway.enabled is false (answered 404 with `disabledGateway()`). */
  | { kind: 'disabled' }

export interface WebRequest {
  method: string
  /** The request target, starting with `/`. */
  url: string
  host: string | undefined
  raw: RawHeaders
}

export function disabledGateway(): WarrenError {
  return new WarrenError('ERR_BAD_NAME', 'the HTTP gateway is disabled on this node (gateway.enabled is false)', {
    hint: 'Set "gateway": { "enabled": true } in config.json, or use the proxy (http://<service>.<node>.warren/).',
  })
}

/**
 * Routes an origin-form request; throws ERR_HOST_NOT_SERVED (Host not ours), ERR_CROSS_ORIGIN (browser request
 * from elsewhere), ERR_BAD_NAME (bad path or subdomain), or what resolving the node throws (only for a redirect;
 * ERR_UNKNOWN_ADDRESSES for a ticket with addresses this node does not know).
 */
export function routeWebRequest(
  req: WebRequest,
  ctx: { gateway: Gateway; policy: HostPolicy; gatewayEnabled: boolean },
): WebRoute {
  const hc: HostClass = ctx.policy.classify(req.host)
  const host = req.host!
  const sig = browserSignals(req.raw)
  if (hc.kind === 'service') {
    const v = subdomainVerdict(req.method, sig, host)
    if (v.kind === 'refuse') throw v.error
    if (!ctx.gatewayEnabled) return { kind: 'disabled' }
    const path = req.url.startsWith('/') ? removeDotSegments(req.url) : '/'
    return { kind: 'forward', spec: { node: hc.node, service: hc.service, path, browser: sig.browser } }
  }
  if (!isGatewayPath(req.url)) return { kind: 'local' }
  if (!ctx.gatewayEnabled) return { kind: 'disabled' }
  const t = parseGatewayPath(req.url)
  const v = pathGatewayVerdict(req.method, sig, host)
  if (v.kind === 'refuse') throw v.error
  if (v.kind === 'redirect') {
    const ids = ctx.gateway.resolveNode(t.node, { learn: false })
    const label = nodeLabel(t.node) ?? ids.base36
    return { kind: 'redirect', status: v.status, location: subdomainUrl(hc, t.service, label, t.path) }
  }
  return {
    kind: 'forward',
    spec: { node: t.node, service: t.service, path: t.path, prefix: t.prefix, browser: sig.browser },
  }
}
