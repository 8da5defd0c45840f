/**
 * The HTTP(S) server of the Warren web app (Node side): `/.warren/app.js`, `/.warren/sw.js` and `/.warren/warren.js`
 * are the bundles that scripts/build-browser.ts writes to dist/browser; every other path answers the page
 * (src/browser/web/page.ts) for `relay`, so that the first visit of any URL of the app, on any host name it serves
 * (`<service>.<node id>.<domain>` with a wildcard DNS name and certificate), installs the Service Worker. A relay or any static host can run it: `startWebAppServer({ host, port, relay })`; with `cert` and `key`
 * (PEM) it serves HTTPS, which browsers require for Service Workers anywhere but on loopback.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WarrenError } from '../../errors.ts'
import { WEB_APP_FILES, webAppPage } from './page.ts'

export interface WebAppServerOptions {
  host: string
  port: number
  /**
   * The relay WebSocket address the app's node uses, ending in /p2p/<relay id>; or a function of the host name the
   * page was asked for (the `Host` header without its port), for a server that answers under any name.
   */
  relay: string | ((hostname: string) => string)
  /** PEM certificate and key: HTTPS instead of HTTP. */
  cert?: string | Buffer
  key?: string | Buffer
  /** Where the bundles are (default: dist/browser of this package). */
  dir?: string
}

export interface WebAppServer {
  url: string
  close(): Promise<void>
}

/** dist/browser, from this module in src/browser/web (a checkout) or dist/browser/web (the package). */
function defaultDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url))
  const candidates = [join(here, '..'), join(here, '..', '..', '..', 'dist', 'browser')]
  return candidates.find((d) => existsSync(join(d, 'sw.js'))) ?? candidates[1]!
}

/** The host name of a request (`Host` without its port, IPv6 without brackets), lower case; '' when absent. */
export function requestHostname(req: IncomingMessage): string {
  const host = (req.headers.host ?? '').toLowerCase()
  const v6 = /^\[([0-9a-f:.]+)\](:\d+)?$/.exec(host)
  if (v6 !== null) return v6[1]!
  return host.replace(/:\d+$/, '')
}

export async function startWebAppServer(opts: WebAppServerOptions): Promise<WebAppServer> {
  const dir = opts.dir ?? defaultDir()
  const missing = Object.values(WEB_APP_FILES).filter((f) => !existsSync(join(dir, f.file)))
  if (missing.length > 0) {
    throw new WarrenError(
      'ERR_CONFIG_INVALID',
      `the web app is not built: ${missing.map((f) => f.file).join(', ')} missing in ${dir}`,
      {
        hint: 'Run `node scripts/build-browser.ts` (it writes dist/browser).',
      },
    )
  }
  const files = new Map<string, { type: string; body: Buffer }>()
  for (const [path, f] of Object.entries(WEB_APP_FILES)) {
    files.set(path, { type: f.type, body: await readFile(join(dir, f.file)) })
  }
  const relayOf = opts.relay
  const fixedPage = typeof relayOf === 'string' ? Buffer.from(webAppPage(relayOf)) : undefined
  const pageFor = (req: IncomingMessage): Buffer =>
    fixedPage ?? Buffer.from(webAppPage((relayOf as (h: string) => string)(requestHostname(req))))
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const f = files.get(path) ?? { type: 'text/html; charset=utf-8', body: pageFor(req) }
    res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 200 : 405, {
      'content-type': f.type,
      // the worker lives under /.warren/ but controls the whole origin
      ...(path === '/.warren/sw.js' ? { 'service-worker-allowed': '/' } : {}),
      'content-length': f.body.byteLength,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
    })
    res.end(req.method === 'HEAD' ? undefined : f.body)
  }
  const tls = opts.cert !== undefined && opts.key !== undefined
  const server: Server = tls
    ? createHttpsServer({ cert: opts.cert, key: opts.key }, handler)
    : createHttpServer(handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new WarrenError(
          'ERR_LISTEN_FAILED',
          `cannot serve the web app on ${opts.host}:${opts.port}: ${(err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'address in use' : err.message}`,
          {
            hint: 'Pick another port, or stop the process that holds it.',
            cause: err,
          },
        ),
      ),
    )
    server.listen(opts.port, opts.host, resolve)
  })
  const { port } = server.address() as AddressInfo
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  return {
    url: `${tls ? 'https' : 'http'}://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
