/**
 * Who may talk to the access port as a web server, and from where.
 *
 * **Host names.** Origin-form requests (the path gateway, the PAC file, the subdomain gateway) are answered only
 * when `Host` names the access port: an IP literal (DNS rebinding needs a DNS name), `localhost`, a name in
 * `proxy.hosts`, or a subdomain of `localhost` or of a `proxy.hosts` name. Anything else is refused with 421
 * (ERR_HOST_NOT_SERVED): a page on `evil.example` whose name was rebound to 127.0.0.1 gets nothing.
 *
 * **One origin per service.** `http://<service>.<node>.localhost:<port>/<path>` is the subdomain gateway: the
 * service is the whole origin, so the browser's same-origin policy keeps services (and nodes) apart.
 *
 * **Browser requests** (any `Sec-Fetch-*` or `Origin` header) to the path gateway, where every service shares one
 * origin, are refused (403, ERR_CROSS_ORIGIN) when they come from another site or origin; top-level navigations
 * are redirected to the service's own origin. On the subdomain gateway, requests from other origins are refused
 * except plain navigations (GET/HEAD links). Clients that send neither (curl, scripts) are not affected.
 */
import { isIP } from 'node:net'
import { WarrenError } from '../errors.ts'
import type { RawHeaders } from '../http/forward-headers.ts'

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** What `Host` says about an origin-form request. */
export type HostClass =
  | { kind: 'local'; name: string; port: number | undefined }
  | { kind: 'service'; service: string; node: string; domain: string; port: number | undefined }

/** The browser's description of a request (Fetch Metadata, RFC 6454 Origin). */
export interface BrowserSignals {
  /** Any `Sec-Fetch-*` or `Origin` header: the request comes from a browser. */
  browser: boolean
  site?: string
  mode?: string
  dest?: string
  origin?: string
}

export type OriginVerdict =
  | { kind: 'pass' }
  | { kind: 'redirect'; status: 302 | 307 }
  | { kind: 'refuse'; error: WarrenError }

/** Splits `Host` into a lower-case name (IPv6 without brackets, no trailing dot) and a port. */
export function splitHost(host: string): { name: string; port: number | undefined } | undefined {
  const h = host.trim().toLowerCase()
  let name: string
  let rest: string
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    if (end < 0) return undefined
    name = h.slice(1, end)
    rest = h.slice(end + 1)
  } else {
    const i = h.indexOf(':')
    name = i < 0 ? h : h.slice(0, i)
    rest = i < 0 ? '' : h.slice(i)
  }
  let port: number | undefined
  if (rest !== '') {
    if (!/^:\d{1,5}$/.test(rest)) return undefined
    port = Number(rest.slice(1))
  }
  if (name.endsWith('.')) name = name.slice(0, -1)
  if (name === '') return undefined
  return { name, port }
}

function hostRefused(host: string | undefined, why: string): WarrenError {
  const shown = host === undefined ? '(none)' : host.length > 100 ? `${host.slice(0, 97)}...` : host
  return new WarrenError(
    'ERR_HOST_NOT_SERVED',
    `the access port does not serve the host name ${JSON.stringify(shown)}: ${why}`,
    {
      hint: 'Use http://127.0.0.1:<port>/, http://<service>.<node>.localhost:<port>/, or add the name to proxy.hosts in config.json.',
      details: { host: shown },
    },
  )
}

/** Host values {@link HostPolicy.classify} remembers at most (all are forgotten at once past it). */
const SEEN_HOSTS = 256

/** Host names the access port answers to, and how. */
export class HostPolicy {
  readonly #port: () => number
  /** Configured names: name → port (undefined: any port). */
  readonly #configured = new Map<string, number | undefined>()
  /**
   * Host values classified before, with the access port they were classified for: a client sends the same Host on
   * every request of a connection, and the fast path's request heads (and so their Host strings) are shared.
   */
  readonly #seen = new Map<string, { port: number; hc: HostClass }>()

  /** `port` is read when needed (the port is known once the listener is open); `hosts` is `proxy.hosts`. */
  constructor(port: () => number, hosts: readonly string[] = []) {
    this.#port = port
    for (const h of hosts) {
      const s = splitHost(h)
      if (s !== undefined) this.#configured.set(s.name, s.port)
    }
  }

  /**
   * Classifies `Host`; throws ERR_HOST_NOT_SERVED (421) for names it does not own, ERR_BAD_NAME for a bad subdomain.
   * The result is shared between calls with the same Host: never written to.
   */
  classify(host: string | undefined): HostClass {
    if (host === undefined || host === '') throw hostRefused(host, 'the request has no Host header')
    const want = this.#port()
    const hit = this.#seen.get(host)
    if (hit !== undefined && hit.port === want) return hit.hc
    const hc = Object.freeze(this.#classify(host, want))
    if (this.#seen.size >= SEEN_HOSTS) this.#seen.clear()
    this.#seen.set(host, { port: want, hc })
    return hc
  }

  #classify(host: string, want: number): HostClass {
    const s = splitHost(host)
    if (s === undefined) throw hostRefused(host, 'it is not a valid host[:port]')
    const { name, port } = s
    const portOk = (port ?? 80) === want
    if (isIP(name) !== 0) {
      if (!portOk) throw hostRefused(host, `the access port is ${want}`)
      return { kind: 'local', name, port }
    }
    for (const [domain, dPort] of [['localhost', want] as const, ...this.#configured]) {
      const ok = dPort === undefined || (port ?? 80) === dPort
      if (name === domain) {
        if (!ok) throw hostRefused(host, `the access port is ${want}`)
        return { kind: 'local', name, port }
      }
      if (name.endsWith(`.${domain}`)) {
        if (!ok) throw hostRefused(host, `the access port is ${want}`)
        const labels = name.slice(0, -(domain.length + 1)).split('.')
        if (labels.length !== 2 || !labels.every((l) => LABEL.test(l))) {
          throw new WarrenError(
            'ERR_BAD_NAME',
            `"${name}" is not a subdomain gateway name: use <service>.<node>.${domain}`,
            {
              hint: `Write <service>.<node>.${domain}, where node is an alias from peers or the base36 node id (k51qzi5uqu5…).`,
              details: { host: name },
            },
          )
        }
        return { kind: 'service', service: labels[0]!, node: labels[1]!, domain, port }
      }
    }
    throw hostRefused(host, 'it is not an address, localhost, *.localhost or a name in proxy.hosts')
  }
}

/** Reads the Fetch Metadata and Origin headers of a request. */
export function browserSignals(raw: Readonly<RawHeaders>): BrowserSignals {
  const out: BrowserSignals = { browser: false }
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase()
    if (n === 'origin') {
      out.browser = true
      out.origin = raw[i + 1]!.trim().toLowerCase()
    } else if (n.startsWith('sec-fetch-')) {
      out.browser = true
      const v = raw[i + 1]!.trim().toLowerCase()
      if (n === 'sec-fetch-site') out.site = v
      else if (n === 'sec-fetch-mode') out.mode = v
      else if (n === 'sec-fetch-dest') out.dest = v
    }
  }
  return out
}

function crossOrigin(what: string, why: string): WarrenError {
  return new WarrenError('ERR_CROSS_ORIGIN', `${what} refused: ${why}`, {
    hint: 'Open the service at its own origin, http://<service>.<node>.localhost:<port>/; pages of one service cannot use another through the access port.',
  })
}

/** The serialized origin of a request that arrived with this `Host` (RFC 6454: port omitted when 80). */
export function ownOrigin(host: string): string {
  const s = splitHost(host)
  if (s === undefined) return ''
  const name = isIP(s.name) === 6 ? `[${s.name}]` : s.name
  return `http://${name}${s.port === undefined || s.port === 80 ? '' : `:${s.port}`}`
}

function foreign(sig: BrowserSignals, host: string): string | undefined {
  if (sig.origin !== undefined && sig.origin !== ownOrigin(host)) return `the request comes from ${sig.origin}`
  if (sig.site === 'cross-site' || sig.site === 'same-site')
    return `the request comes from another site (Sec-Fetch-Site: ${sig.site})`
  return undefined
}

const SAFE = new Set(['GET', 'HEAD'])

/** The path gateway (`/http/…`, `/p2p/…`): one origin for every service, so browsers only navigate there. */
export function pathGatewayVerdict(method: string, sig: BrowserSignals, host: string): OriginVerdict {
  if (!sig.browser) return { kind: 'pass' }
  const navigation = sig.mode === 'navigate' && sig.dest === 'document'
  if (navigation && SAFE.has(method)) return { kind: 'redirect', status: 302 }
  const why = foreign(sig, host)
  if (why !== undefined) return { kind: 'refuse', error: crossOrigin('a browser request to the path gateway was', why) }
  if (navigation) return { kind: 'redirect', status: 307 }
  return { kind: 'pass' }
}

/** The subdomain gateway: the service's own origin; other origins may only link to it (GET/HEAD navigations). */
export function subdomainVerdict(method: string, sig: BrowserSignals, host: string): OriginVerdict {
  if (!sig.browser) return { kind: 'pass' }
  const why = foreign(sig, host)
  if (why === undefined || (sig.mode === 'navigate' && SAFE.has(method) && sig.origin === undefined))
    return { kind: 'pass' }
  return { kind: 'refuse', error: crossOrigin(`a browser request to ${ownOrigin(host)} was`, why) }
}

/** Where a navigation to the path gateway goes: the service's subdomain origin, same port as the request. */
export function subdomainUrl(host: HostClass, service: string, nodeLabel: string, path: string): string {
  const domain = host.kind === 'service' ? host.domain : isIP(host.name) !== 0 ? 'localhost' : host.name
  const port = host.port === undefined || host.port === 80 ? '' : `:${host.port}`
  return `http://${service}.${nodeLabel}.${domain}${port}${path}`
}

/** A label usable in a subdomain gateway name for `node` as written, if it is one. */
export function nodeLabel(node: string): string | undefined {
  return LABEL.test(node) ? node : undefined
}
