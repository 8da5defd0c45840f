/**
 * Gateway URL forms:
 *
 * - `/http/<node>/<service>/<path>?<query>` (the go-ipfs p2p HTTP proxy proposal's form)
 * - `/p2p/<node>/x/<service>/http/<path>?<query>` (Kubo's `Experimental.P2pHttpProxy` form)
 * - `/p2p/<node>/http/<path>` (Kubo's short form: the service named `http`)
 *
 * `<node>` is a `peers` alias, a node id in either form, or a ticket; `<path>` becomes the request path upstream,
 * its dot segments (`.`, `..`, `%2e`) resolved (dot-segments.ts): `..` never climbs above `<prefix>/`.
 */
import { WarrenError } from '../errors.ts'
import { removeDotSegments } from './dot-segments.ts'

export interface GatewayTarget {
  node: string
  service: string
  /** Path and query for the upstream request, always starting with `/`. */
  path: string
  /** The part of the URL before `path`, for `X-Forwarded-Prefix` and `Location` rewriting. */
  prefix: string
}

const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** True when the request path is one of the gateway's forms. */
export function isGatewayPath(url: string): boolean {
  return url.startsWith('/http/') || url.startsWith('/p2p/') || url === '/http' || url === '/p2p'
}

function bad(url: string, why: string): never {
  throw new WarrenError(
    'ERR_BAD_GATEWAY_PATH',
    `gateway path "${url.length > 200 ? `${url.slice(0, 197)}...` : url}" ${why}`,
    {
      hint: 'Use /http/<node>/<service>/<path> or /p2p/<node>/x/<service>/http/<path>, where node is an alias from peers, a node id or a ticket.',
      details: { path: url },
    },
  )
}

function decode(url: string, seg: string): string {
  if (!seg.includes('%')) return seg
  try {
    return decodeURIComponent(seg)
  } catch {
    return bad(url, `has a badly escaped part "${seg}"`)
  }
}

/** Parses a gateway request target (path + query); throws ERR_BAD_GATEWAY_PATH naming what is missing. */
export function parseGatewayPath(url: string): GatewayTarget {
  const q = url.indexOf('?')
  const pathPart = q < 0 ? url : url.slice(0, q)
  const query = q < 0 ? '' : url.slice(q)
  const segs = pathPart.split('/') // ['', 'http', node, service, ...rest]
  let node: string
  let service: string
  let restFrom: number
  if (segs[1] === 'http') {
    if ((segs[2] ?? '') === '') bad(url, 'names no node')
    if ((segs[3] ?? '') === '') bad(url, 'names no service')
    node = decode(url, segs[2]!)
    service = decode(url, segs[3]!)
    restFrom = 4
  } else if (segs[1] === 'p2p') {
    if ((segs[2] ?? '') === '') bad(url, 'names no node')
    node = decode(url, segs[2]!)
    if (segs[3] === 'x') {
      if ((segs[4] ?? '') === '') bad(url, 'names no service after /x/')
      if (segs[5] !== 'http') bad(url, 'needs /http after the service (/p2p/<node>/x/<service>/http/<path>)')
      service = decode(url, segs[4]!)
      restFrom = 6
    } else if (segs[3] === 'http') {
      service = 'http'
      restFrom = 4
    } else return bad(url, 'needs /x/<service>/http/ after the node')
  } else return bad(url, 'does not start with /http/ or /p2p/')
  if (!SERVICE.test(service)) bad(url, `names the service "${service}", which is not a valid service name`)
  const prefix = segs.slice(0, restFrom).join('/')
  const rest = segs.slice(restFrom).join('/')
  return { node, service, path: removeDotSegments(`/${rest}${query}`), prefix }
}
