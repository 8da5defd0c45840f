/**
 * The node's own pages on the access port. `http://warren.localhost:<port>/` is an origin no service shares (services
 * live at `<service>.<node>.localhost`), so the daemon serves its dashboard and `/metrics` there; `/metrics` is also
 * answered on the port's plain addresses (`127.0.0.1:<port>`, `localhost:<port>`) for clients that are not browsers,
 * such as Prometheus.
 *
 * The access port's guards apply first (other local users, connection caps, `proxy.auth`); then a request to
 * `warren.localhost` must name the access port's own port, and a browser request must come from this origin:
 * `Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin` other than `http://warren.localhost:<port>`, is refused
 * (403, ERR_CROSS_ORIGIN) — a page on another site or a service's origin cannot read the node's status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { WarrenError } from '../errors.ts'
import { type BrowserSignals, ownOrigin, splitHost } from '../gateway/origins.ts'

/** The host name of the node's own pages. */
export const PAGES_HOST = 'warren.localhost'

/** `all`: every page of the origin; `metrics`: `/metrics` only (asked for on the port's plain addresses). */
export type PagesScope = 'all' | 'metrics'

/** Answers one request for the node's pages (the dashboard in src/ui); the access port checked who asks. */
export type PageHandler = (req: IncomingMessage, res: ServerResponse, scope: PagesScope) => void

/**
 * Where the daemon puts its page handler once its node runs. Until it does (and on nodes that serve no pages),
 * the access port answers `warren.localhost` as any other unknown name.
 */
export class LocalPages {
  handler: PageHandler | undefined
}

/** Whether `Host` names the node's pages (`warren.localhost`, any port). */
export function isPagesHost(host: string | undefined): boolean {
  // asked on every origin-form request (the gateway's too): the prefix first, the full parse only for a candidate
  if (host === undefined || host.slice(0, PAGES_HOST.length).toLowerCase() !== PAGES_HOST) return false
  return splitHost(host)?.name === PAGES_HOST
}

/** Why a request to `warren.localhost` (Host `host`) on the access port `port` is refused, or undefined. */
export function pagesRefusal(host: string, port: number, sig: BrowserSignals): WarrenError | undefined {
  const s = splitHost(host)
  if (s === undefined || (s.port ?? 80) !== port) {
    return new WarrenError(
      'ERR_HOST_NOT_SERVED',
      `the access port does not serve the host name ${JSON.stringify(host)}: the access port is ${port}`,
      { hint: `Open http://${PAGES_HOST}:${port}/.`, details: { host } },
    )
  }
  const own = ownOrigin(host)
  let why: string | undefined
  if (sig.origin !== undefined && sig.origin !== own) why = `the request comes from ${sig.origin}`
  else if (sig.site === 'cross-site' || sig.site === 'same-site') {
    why = `the request comes from another site (Sec-Fetch-Site: ${sig.site})`
  }
  if (why === undefined) return undefined
  return new WarrenError('ERR_CROSS_ORIGIN', `a browser request to ${own} was refused: ${why}`, {
    hint: `Open ${own}/ in the browser itself; other sites and services cannot read the node's pages.`,
  })
}
