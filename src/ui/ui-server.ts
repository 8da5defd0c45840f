/**
 * The node's own web origin (config `metrics.listen`, or `warren up --metrics <host:port>`): the dashboard at `/`
 * (with `/dashboard.js` and `/dashboard.css`), the status it polls at `/status.json`, and Prometheus text at
 * `/metrics`.
 *
 * Only requests naming this server in `Host` (its address, `localhost:<port>` or `warren.localhost:<port>`) are
 * answered, so a page on another name (DNS rebinding) cannot read it; a request a browser marks as coming from
 * another site (`Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin` other than this server) is refused.
 * Every answer forbids framing and sniffing; the page may load scripts and styles from this origin only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatListenAddress, parseListenAddress } from '../config/listen-address.ts'
import { WarrenError } from '../errors.ts'
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard-assets.ts'
import type { NodeMetrics } from './metrics.ts'

/** Why a request may not use this server, or undefined. */
export function refusalOf(headers: IncomingMessage['headers'], port: number, host: string): string | undefined {
  const bracket = (h: string): string => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h)
  const allowed = new Set(
    [host, '127.0.0.1', 'localhost', 'warren.localhost', '::1'].map((h) => `${bracket(h)}:${port}`.toLowerCase()),
  )
  const named = headers.host?.toLowerCase()
  if (named === undefined || !allowed.has(named)) {
    return `Host ${JSON.stringify(headers.host ?? '')} is not this server (use http://warren.localhost:${port}/)`
  }
  const site = headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') return `a request from another site (Sec-Fetch-Site: ${site})`
  const origin = headers.origin
  if (origin !== undefined && origin.toLowerCase() !== `http://${named}`) return `a request from ${origin}`
  return undefined
}

export interface UiSource {
  metrics: NodeMetrics
  /** What `/status.json` answers (the node's status). */
  status(): unknown
}

export interface UiServer {
  /** host:port actually bound. */
  readonly listen: string
  close(): Promise<void>
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
}

const ASSETS: Record<string, [string, string]> = {
  '/': ['text/html; charset=utf-8', DASHBOARD_HTML],
  '/dashboard.js': ['text/javascript; charset=utf-8', DASHBOARD_JS],
  '/dashboard.css': ['text/css; charset=utf-8', DASHBOARD_CSS],
}

/** Starts the server on `listen` (host:port; port 0 picks a free one). */
export async function startUiServer(listen: string, src: UiSource): Promise<UiServer> {
  const want = parseListenAddress(listen)
  let port = want.port
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    const text = 'text/plain; charset=utf-8'
    const refusal = refusalOf(req.headers, port, want.host)
    if (refusal !== undefined) return send(403, text, `refused: ${refusal}\n`)
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, text, 'only GET and HEAD\n')
    const path = (req.url ?? '/').split('?')[0]!
    const asset = ASSETS[path]
    if (asset !== undefined) return send(200, asset[0], asset[1])
    if (path === '/status.json') return send(200, 'application/json', JSON.stringify(src.status()))
    if (path === '/metrics') {
      return void src.metrics.text().then(
        (body) => send(200, src.metrics.registry.contentType, body),
        (err: Error) => send(500, text, `${err.message}\n`),
      )
    }
    send(404, text, 'not found: the dashboard is at /, the metrics at /metrics\n')
  })
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void =>
      reject(
        new WarrenError(
          'ERR_LISTEN_FAILED',
          `cannot open the dashboard and metrics on ${formatListenAddress(want)}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`,
          {
            hint: 'Set another metrics.listen in config.json (or --metrics), or stop what uses that port.',
            cause: err,
          },
        ),
      )
    server.once('error', fail)
    server.listen(want.port, want.host, () => {
      server.off('error', fail)
      resolve()
    })
  })
  port = (server.address() as AddressInfo).port
  return {
    listen: formatListenAddress({ host: want.host, port }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
