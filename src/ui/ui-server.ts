/**
 * The node's pages: the dashboard at `/` (with `/dashboard.js`, `/dashboard.css` and the uPlot charting library at
 * `/uplot.js` and `/uplot.css`, served from this origin), the status it polls at `/status.json`, and Prometheus text
 * at `/metrics`. {@link uiHandler} answers them on the access port's own origin, `http://warren.localhost:<port>/`
 * (src/access/local-pages.ts checks who asks there); {@link startUiServer} serves them on an address of their own
 * (config `metrics.listen`, or `warren up --metrics <host:port>`).
 *
 * On that address of their own, only requests naming this server in `Host` (its address, `localhost:<port>` or
 * `warren.localhost:<port>`) are answered, so a page on another name (DNS rebinding) cannot read it; a request a browser marks as coming from
 * another site (`Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin` other than this server) is refused.
 * Every answer forbids framing and sniffing; the page may load scripts and styles from this origin only.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import type { PagesScope } from '../access/local-pages.ts'
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

const TEXT = 'text/plain; charset=utf-8'
const JS = 'text/javascript; charset=utf-8'
const CSS = 'text/css; charset=utf-8'

/** uPlot's browser build and style, read from the installed package once. */
function uplotAsset(file: string): string {
  return readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${file}`), 'utf8')
}

let assets: Record<string, [string, string]> | undefined
function assetsOf(): Record<string, [string, string]> {
  assets ??= {
    '/': ['text/html; charset=utf-8', DASHBOARD_HTML],
    '/dashboard.js': [JS, DASHBOARD_JS],
    '/dashboard.css': [CSS, DASHBOARD_CSS],
    '/uplot.js': [JS, uplotAsset('uPlot.iife.min.js')],
    '/uplot.css': [CSS, uplotAsset('uPlot.min.css')],
  }
  return assets
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/**
 * Answers one request for the node's pages, once whoever serves them has checked who asks; with scope `metrics`,
 * only `/metrics` (the access port's plain addresses, for Prometheus).
 */
export function uiHandler(src: UiSource): (req: IncomingMessage, res: ServerResponse, scope: PagesScope) => void {
  return (req, res, scope) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(req, res, 405, TEXT, 'only GET and HEAD\n')
    const path = (req.url ?? '/').split('?')[0]!
    if (path === '/metrics') {
      return void src.metrics.text().then(
        (body) => send(req, res, 200, src.metrics.registry.contentType, body),
        (err: Error) => send(req, res, 500, TEXT, `${err.message}\n`),
      )
    }
    if (scope === 'all') {
      const asset = assetsOf()[path]
      if (asset !== undefined) return send(req, res, 200, asset[0], asset[1])
      if (path === '/status.json') return send(req, res, 200, 'application/json', JSON.stringify(src.status()))
    }
    send(req, res, 404, TEXT, 'not found: the dashboard is at /, the metrics at /metrics\n')
  }
}

/** Starts the server on `listen` (host:port; port 0 picks a free one). */
export async function startUiServer(listen: string, src: UiSource): Promise<UiServer> {
  const want = parseListenAddress(listen)
  let port = want.port
  const handle = uiHandler(src)
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const refusal = refusalOf(req.headers, port, want.host)
    if (refusal !== undefined) return send(req, res, 403, TEXT, `refused: ${refusal}\n`)
    handle(req, res, 'all')
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
