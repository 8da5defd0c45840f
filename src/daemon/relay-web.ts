/**
 * The Warren web app served beside a relay (`warren relay --web`, `web` in relay.json): the page, the Service Worker
 * and the browser bundle (src/browser/web/server.ts), over HTTPS with the relay's `ws` certificate, else plain HTTP
 * (enough on loopback, or behind a TLS proxy). The page tells the browser node the relay's own WebSocket address:
 * at `web.domain` when set, else at the host name the page was opened by (the part after `<service>.<node id>.` on
 * an origin of a service's own), so one relay serves every name it is reached by.
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { startWebAppServer } from '../browser/web/server.ts'
import { WarrenError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { HOSTNAME, type RelayConfig } from '../relay/server/config.ts'
import type { Relay } from '../relay/server/relay-node.ts'

export interface RelayWeb {
  /** Where a browser opens the app, e.g. `https://relay.example.net:8443/`. */
  url: string
  /** Where the web server listens, e.g. `http://127.0.0.1:8080/` (what a TLS proxy forwards to). */
  local: string
  /** The relay WebSocket address the page served for `hostname` carries. */
  relayAddrFor(hostname: string): string
  close(): Promise<void>
}

/** The default web port: 8443 with a certificate, 8080 without. */
export const defaultWebPort = (tls: boolean): number => (tls ? 8443 : 8080)

/** The WebSocket port and scheme browsers reach the relay at (the proxy's with `behindProxy`). */
function publicWebSocket(config: RelayConfig, relay: Relay): { port: number; tls: boolean } {
  if (config.behindProxy !== undefined) return { port: config.behindProxy.port, tls: true }
  for (const a of relay.addrs) {
    const m = /\/tcp\/(\d+)\/(tls\/)?ws(s)?\//.exec(a)
    if (m !== null) return { port: Number(m[1]), tls: m[2] !== undefined || m[3] !== undefined }
  }
  throw new WarrenError('ERR_CONFIG_INVALID', 'the relay serves the web app but listens on no WebSocket address', {
    hint: 'Give the relay a WebSocket port: --ws <port> (or "ws": { "port": 4002 } in relay.json).',
  })
}

/** `<service>.<node id>.<rest>` → `<rest>`: the relay's own name behind an origin of a service's own. */
function relayHostOf(hostname: string): string {
  const m = /^[a-z0-9][a-z0-9-]{0,62}\.k51qzi5uqu5[a-z0-9]{40,60}\.(.+)$/.exec(hostname)
  return m === null ? hostname : m[1]!
}

export async function startRelayWeb(config: RelayConfig, relay: Relay, log: Logger): Promise<RelayWeb | undefined> {
  const web = config.web
  if (web === undefined) return undefined
  const ws = publicWebSocket(config, relay)
  const cert = config.behindProxy === undefined ? config.ws?.cert : undefined
  const key = config.behindProxy === undefined ? config.ws?.key : undefined
  const tls = cert !== undefined && key !== undefined
  const id = relay.peerId.toString()
  const fallback = relay.addrs.find((a) => /\/ws\/|\/wss\//.test(a)) ?? relay.addrs[0] ?? ''
  const relayAddrFor = (hostname: string): string => {
    const host = web.domain ?? relayHostOf(hostname)
    const proto = isIP(host) === 4 ? 'ip4' : isIP(host) === 6 ? 'ip6' : HOSTNAME.test(host) ? 'dns4' : undefined
    // a Host header that is no name (absent, or forged): the relay's first WebSocket address
    if (proto === undefined) return fallback
    return `/${proto}/${host}/tcp/${ws.port}/${ws.tls ? 'tls/' : ''}ws/p2p/${id}`
  }
  const host = web.host ?? (config.behindProxy === undefined ? '0.0.0.0' : '127.0.0.1')
  const port = web.port ?? defaultWebPort(tls)
  const server = await startWebAppServer({
    host,
    port,
    relay: relayAddrFor,
    ...(tls ? { cert: await readFile(cert), key: await readFile(key) } : {}),
    ...(web.dir === undefined ? {} : { dir: web.dir }),
  }).catch((err: unknown) => {
    if (!(err instanceof WarrenError) || err.code !== 'ERR_LISTEN_FAILED') throw err
    throw new WarrenError('ERR_LISTEN_FAILED', `the relay ${err.message}`, {
      hint: 'Pass another --web-listen <host:port> (or web.port in relay.json), or stop the process that holds it.',
      cause: err,
    })
  })
  const bound = Number(new URL(server.url).port)
  const scheme = tls || config.behindProxy !== undefined ? 'https' : 'http'
  const publicHost = web.domain ?? config.behindProxy?.host
  const publicPort = config.behindProxy !== undefined ? config.behindProxy.port : bound
  const url =
    publicHost === undefined
      ? server.url
      : `${scheme}://${publicHost}${publicPort === (scheme === 'https' ? 443 : 80) ? '' : `:${publicPort}`}/`
  log('info', `web app on ${server.url}${url === server.url ? '' : ` (opened as ${url})`}`)
  return { url, local: server.url, relayAddrFor, close: () => server.close() }
}
