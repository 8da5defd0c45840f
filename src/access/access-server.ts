/**
 * The access port (default 127.0.0.1:4780): SOCKS5, the HTTP proxy (CONNECT and absolute-form), the PAC file
 * and the HTTP gateway on one listener. The first byte tells SOCKS5 (0x05) from HTTP; HTTP connections are
 * handed to one Node `http.Server` that routes by request form:
 *
 * - `CONNECT web.laptop.warren:443`                    → tunnel to service web
 * - `GET http://web.laptop.warren/x` (absolute form)   → request carried to service web (keep-alive, pooled)
 * - `GET /proxy.pac`                                   → PAC file
 * - `ANY /http/<node>/<service>/…`, `/p2p/<node>/x/…`  → gateway
 * - `Upgrade: websocket` on either of the last forms   → WebSocket carried over a fresh stream
 */

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer, isIP, type Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { formatListenAddress, parseListenAddress } from '../config/listen-address.ts'
import { toWarrenError, WarrenError } from '../errors.ts'
import { FastPath } from '../gateway/fast/fast-path.ts'
import { type ForwardSpec, Gateway, type GatewayBackend } from '../gateway/gateway.ts'
import { browserSignals, HostPolicy } from '../gateway/origins.ts'
import { isGatewayPath, parseGatewayPath } from '../gateway/paths.ts'
import { disabledGateway, routeWebRequest, type WebRoute } from '../gateway/web-routes.ts'
import { withoutHeaders } from '../http/forward-headers.ts'
import { sendHttpError, writeRawHttpError } from '../http/http-errors.ts'
import type { RequestHead } from '../http/http1.ts'
import type { Logger } from '../log.ts'
import { AccessGuard } from './access-guard.ts'
import { basicMatches, checkHttpAuth } from './auth.ts'
import { PAC_CONTENT_TYPE, PAC_PATH, pacFile } from './pac.ts'
import { parseProxyUrl, unknownPage } from './request-targets.ts'
import type { AddressTable } from './service-addresses.ts'
import type { AccessSettings } from './settings.ts'
import { handleSocks5 } from './socks5.ts'
import { openTunnel, parseAuthority, serviceForHost, type TunnelContext } from './tunnels.ts'

export interface AccessServerOptions {
  settings: AccessSettings
  backend: GatewayBackend
  addresses: AddressTable
  log?: Logger
}

const SOCKS_VERSION = 5
const ROUTE_CACHE_MAX = 1024

export class AccessServer {
  readonly #settings: AccessSettings
  readonly #log: Logger
  readonly #gateway: Gateway
  readonly #tunnels: TunnelContext
  readonly #http: Server
  readonly #net: NetServer
  /** Plain gateway and proxy requests without Node's HTTP server (off with proxy.auth). */
  readonly #fast: FastPath | undefined
  /** Fast-path routes by request target (pure functions of the target and the settings). */
  readonly #routes = new Map<string, ForwardSpec>()
  readonly #sockets = new Set<Socket>()
  /** Connections whose first request head has not arrived yet, with their deadline. */
  readonly #heads = new Map<Duplex, NodeJS.Timeout>()
  /** Local users and connection caps (src/access/access-guard.ts). */
  readonly #guard: AccessGuard
  #listen = ''
  /** Host names served as a web server (origins.ts); the port is known once listening. */
  readonly #policy: HostPolicy
  #port = 0

  private constructor(opts: AccessServerOptions) {
    this.#settings = opts.settings
    this.#log = opts.log ?? (() => {})
    const s = opts.settings
    this.#gateway = new Gateway(opts.backend, {
      tld: s.tld,
      maxStreamsPerPeer: s.maxStreamsPerPeer,
      responseTimeoutMs: s.gateway.responseTimeoutMs,
      maxHeaderBytes: s.maxHeaderBytes,
      openTimeoutMs: s.openTimeoutMs,
      log: this.#log,
    })
    this.#tunnels = {
      backend: opts.backend,
      gateway: this.#gateway,
      addresses: opts.addresses,
      tld: s.tld,
      openTimeoutMs: s.openTimeoutMs,
      log: this.#log,
    }
    this.#http = createHttpServer({
      maxHeaderSize: s.maxHeaderBytes,
      headersTimeout: s.headersTimeoutMs,
      requestTimeout: 0, // bodies may stream for as long as they need (1 GiB uploads)
      keepAliveTimeout: 30_000,
      // how often Node checks headersTimeout; its default (30 s) would make short time-outs late
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(s.headersTimeoutMs / 4))),
    })
    this.#policy = new HostPolicy(() => this.#port, s.hosts)
    this.#http.on('request', (req, res) => this.#onRequest(req, res))
    this.#http.on('connect', (req, socket, head) => this.#onConnect(req, socket as Socket, head))
    this.#http.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head))
    this.#http.on('clientError', (err, socket) => this.#onClientError(err as NodeJS.ErrnoException, socket))
    this.#guard = new AccessGuard({
      allowOtherUsers: s.allowOtherUsers,
      maxConnections: s.maxConnections,
      maxConnectionsPerClient: s.maxConnectionsPerClient,
      log: this.#log,
    })
    // paused until the guard admits it: nothing is read from a refused client
    this.#net = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) =>
      this.#guard.accept(socket, (admitted) =>
        this.#net.listening ? this.#onConnection(admitted) : admitted.destroy(),
      ),
    )
    if (s.auth === undefined && s.fastPath) {
      this.#fast = new FastPath({
        backend: opts.backend,
        gateway: this.#gateway,
        tld: s.tld,
        maxHeaderBytes: s.maxHeaderBytes,
        responseTimeoutMs: s.gateway.responseTimeoutMs,
        openTimeoutMs: s.openTimeoutMs,
        maxStreamsPerPeer: s.maxStreamsPerPeer,
        route: (head) => this.#fastRoute(head),
        handOver: (socket, buffered) => {
          if (buffered !== undefined) socket.unshift(buffered)
          this.#http.emit('connection', socket)
          socket.resume()
        },
        headArrived: (socket) => this.#headArrived(socket),
        awaitingHead: (socket) => this.#awaitHead(socket),
        log: this.#log,
      })
    }
  }

  /** Where a request goes when the fast path may carry it; undefined leaves it to the full path. */
  #fastRoute(head: RequestHead): ForwardSpec | undefined {
    const target = head.target
    try {
      if (target.charCodeAt(0) === 47 /* / */) {
        // Host and origin rules first; subdomain and browser requests are not cached (they depend on headers)
        if (this.#policy.classify(head.host).kind === 'service' || browserSignals(head.raw).browser) {
          const r = this.#route(head.method, target, head.host, head.raw)
          return r.kind === 'forward' ? r.spec : undefined
        }
      }
    } catch {
      return undefined // the full path answers with the exact page
    }
    const hit = this.#routes.get(target)
    if (hit !== undefined) return hit
    let spec: ForwardSpec
    try {
      if (target.charCodeAt(0) === 47 /* / */) {
        if (!this.#settings.gateway.enabled || !isGatewayPath(target)) return undefined
        const t = parseGatewayPath(target)
        spec = { node: t.node, service: t.service, path: t.path, prefix: t.prefix }
      } else {
        if (!/^http:\/\//i.test(target)) return undefined
        const u = parseProxyUrl(target)
        const { node, service } = serviceForHost(u.hostname, this.#tunnels)
        spec = { node, service, path: `${u.pathname}${u.search}`, host: u.host }
        // a service address maps through the DNS table, which may change: not cached
        if (isIP(u.hostname.replace(/^\[|\]$/g, '')) !== 0) return spec
      }
    } catch {
      return undefined // the full path answers with the exact page
    }
    // the same targets come again and again (keep-alive clients, polling): parsing them is most of a head's cost
    if (this.#routes.size >= ROUTE_CACHE_MAX) this.#routes.clear()
    this.#routes.set(target, spec)
    return spec
  }

  /** Opens the listener; throws ERR_LISTEN_FAILED. */
  static async start(opts: AccessServerOptions): Promise<AccessServer> {
    const server = new AccessServer(opts)
    const want = parseListenAddress(opts.settings.listen)
    await new Promise<void>((resolve, reject) => {
      server.#net.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new WarrenError(
            'ERR_LISTEN_FAILED',
            `cannot open the access port on ${formatListenAddress(want)}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`,
            { hint: 'Set another proxy.listen in config.json, or stop what uses that port.', cause: err },
          ),
        ),
      )
      server.#net.listen(want.port, want.host, () => resolve())
    })
    server.#net.on('error', (err) => server.#log('error', `access port: ${err.message}`))
    const addr = server.#net.address()
    const port = typeof addr === 'object' && addr !== null ? addr.port : want.port
    server.#port = port
    server.#listen = formatListenAddress({ host: want.host, port })
    server.#log('info', `access port (SOCKS5, HTTP proxy, gateway) on ${server.#listen}`)
    return server
  }

  /** `host:port` actually bound. */
  get listen(): string {
    return this.#listen
  }

  get gateway(): Gateway {
    return this.#gateway
  }

  #onConnection(socket: Socket): void {
    this.#sockets.add(socket)
    socket.on('error', () => {})
    // the first request head (or SOCKS5 greeting) must arrive in time; Node's own headersTimeout only runs on
    // servers that listen themselves, which this http.Server does not
    const timer = setTimeout(() => this.#headTimedOut(socket), this.#settings.headersTimeoutMs)
    this.#heads.set(socket, timer)
    socket.once('close', () => {
      this.#sockets.delete(socket)
      this.#headArrived(socket)
    })
    socket.once('data', (chunk: Buffer) => {
      if (chunk[0] !== SOCKS_VERSION && this.#fast !== undefined) {
        this.#fast.accept(socket, chunk)
        return
      }
      socket.pause()
      socket.unshift(chunk)
      if (chunk[0] === SOCKS_VERSION) {
        this.#headArrived(socket) // the SOCKS5 handshake has its own deadline
        void handleSocks5(socket, {
          ...(this.#settings.auth === undefined ? {} : { auth: this.#settings.auth }),
          handshakeTimeoutMs: this.#settings.headersTimeoutMs,
          connect: (t) => openTunnel(t.host, this.#tunnels),
          log: this.#log,
        })
      } else {
        this.#http.emit('connection', socket)
        socket.resume()
      }
    })
  }

  #headArrived(socket: Duplex): void {
    const timer = this.#heads.get(socket)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.#heads.delete(socket)
    }
  }

  /**
   * A keep-alive connection waits for its next request head: that head too must arrive within headersTimeoutMs
   * of its first byte (an idle connection is left to the keep-alive timeout).
   */
  #awaitHead(socket: Duplex | null): void {
    if (socket === null || socket.destroyed) return // null: the response finished after the socket was detached
    this.#headArrived(socket)
    const s = socket as Socket
    const seen = s.bytesRead
    let started = false
    const check = (): void => {
      if (started) {
        // a whole deadline after its first bytes were seen, the head is still not complete
        this.#headTimedOut(s)
        return
      }
      started = s.bytesRead !== seen
      this.#heads.set(socket, setTimeout(check, this.#settings.headersTimeoutMs))
    }
    this.#heads.set(socket, setTimeout(check, this.#settings.headersTimeoutMs))
  }

  #headTimedOut(socket: Socket): void {
    this.#heads.delete(socket)
    const e = new WarrenError(
      'ERR_TIMEOUT',
      `the request head did not arrive within ${this.#settings.headersTimeoutMs} ms`,
      { hint: 'Send the whole request head at once, or raise proxy.headersTimeoutMs.' },
    )
    if (socket.writable) writeRawHttpError(socket, e, { status: 408 })
    else socket.destroy()
    setTimeout(() => socket.destroy(), 1_000).unref()
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#headArrived(req.socket)
    res.once('finish', () => {
      if (req.complete) this.#awaitHead(req.socket)
      else req.once('end', () => this.#awaitHead(req.socket))
    })
    const url = req.url ?? '/'
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      this.#onProxyRequest(req, res, url)
      return
    }
    // a foreign Host (DNS rebinding) is refused first: not even a login prompt under someone else's name
    const authErr = this.#hostError(req) ?? checkHttpAuth(req, this.#settings.auth, true)
    if (authErr !== undefined) {
      req.resume()
      sendHttpError(res, authErr, authErr.code === 'ERR_PROXY_AUTH' ? { status: 401 } : {})
      return
    }
    this.#dropOwnAuthorization(req)
    let route: WebRoute
    try {
      route = this.#route(req.method ?? 'GET', url, req.headers.host, req.rawHeaders)
    } catch (err) {
      req.resume()
      sendHttpError(res, err)
      return
    }
    if (route.kind === 'forward') return void this.#gateway.forward(req, res, route.spec)
    req.resume()
    if (route.kind === 'disabled') return void sendHttpError(res, disabledGateway(), { status: 404 })
    if (route.kind === 'redirect') {
      res.writeHead(route.status, { location: route.location, 'content-length': 0, 'cache-control': 'no-store' })
      return void res.end()
    }
    if (url === PAC_PATH || url.startsWith(`${PAC_PATH}?`)) {
      const body = pacFile(req.headers.host ?? this.#listen, this.#settings.tld)
      res.writeHead(200, { 'content-type': PAC_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
      return void res.end(req.method === 'HEAD' ? undefined : body)
    }
    sendHttpError(res, unknownPage(url, this.#settings.tld), { status: 404 })
  }

  /** Absolute-form request through the HTTP proxy: `GET http://web.laptop.warren/x`. */
  #onProxyRequest(req: IncomingMessage, res: ServerResponse, url: string): void {
    try {
      const authErr = checkHttpAuth(req, this.#settings.auth, false)
      if (authErr !== undefined) throw authErr
      const u = parseProxyUrl(url)
      const { node, service } = serviceForHost(u.hostname, this.#tunnels)
      this.#gateway.forward(req, res, { node, service, path: `${u.pathname}${u.search}`, host: u.host })
    } catch (err) {
      req.resume()
      sendHttpError(res, err)
    }
  }

  #onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.#headArrived(socket)
    socket.on('error', () => {})
    const authErr = checkHttpAuth(req, this.#settings.auth, false)
    if (authErr !== undefined) {
      writeRawHttpError(socket, authErr)
      return
    }
    let host: string
    try {
      host = parseAuthority(req.url ?? '').host
    } catch (err) {
      writeRawHttpError(socket, err)
      return
    }
    socket.pause()
    openTunnel(host, this.#tunnels).then(
      (join) => {
        if (!socket.destroyed) {
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
          if (head.length > 0) socket.unshift(head)
        }
        join(socket)
      },
      (err: unknown) => {
        this.#log('info', `CONNECT ${req.url}: ${(err as Error).message}`)
        writeRawHttpError(socket, err)
      },
    )
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#headArrived(socket)
    socket.on('error', () => {})
    const url = req.url ?? '/'
    const proxyForm = /^[a-z][a-z0-9+.-]*:\/\//i.test(url)
    const authErr =
      (proxyForm ? undefined : this.#hostError(req)) ?? checkHttpAuth(req, this.#settings.auth, !proxyForm)
    if (authErr !== undefined) {
      writeRawHttpError(socket, authErr, authErr.code === 'ERR_PROXY_AUTH' ? { status: proxyForm ? 407 : 401 } : {})
      return
    }
    try {
      if (proxyForm) {
        const u = parseProxyUrl(url)
        const { node, service } = serviceForHost(u.hostname, this.#tunnels)
        this.#gateway.forwardUpgrade(req, socket, head, {
          node,
          service,
          path: `${u.pathname}${u.search}`,
          host: u.host,
        })
        return
      }
      this.#dropOwnAuthorization(req)
      const route = this.#route(req.method ?? 'GET', url, req.headers.host, req.rawHeaders)
      if (route.kind === 'local' || route.kind === 'redirect') throw unknownPage(url, this.#settings.tld)
      if (route.kind === 'disabled') throw disabledGateway()
      this.#gateway.forwardUpgrade(req, socket, head, route.spec)
    } catch (err) {
      writeRawHttpError(socket, err)
    }
  }

  /** ERR_HOST_NOT_SERVED (or ERR_BAD_NAME) when an origin-form request's Host is not the access port's. */
  #hostError(req: IncomingMessage): WarrenError | undefined {
    try {
      this.#policy.classify(req.headers.host)
      return undefined
    } catch (err) {
      return toWarrenError(err)
    }
  }

  /** Routes an origin-form request (web-routes.ts): Host and origin checks, then subdomain or path gateway. */
  #route(method: string, url: string, host: string | undefined, raw: string[]): WebRoute {
    const ctx = { gateway: this.#gateway, policy: this.#policy, gatewayEnabled: this.#settings.gateway.enabled }
    return routeWebRequest({ method, url, host, raw }, ctx)
  }

  /** With proxy.auth, a gateway request may carry our credentials in `Authorization`: they stop here. */
  #dropOwnAuthorization(req: IncomingMessage): void {
    if (this.#settings.auth !== undefined && basicMatches(req.headers.authorization, this.#settings.auth)) {
      req.rawHeaders = withoutHeaders(req.rawHeaders, new Set(['authorization']))
    }
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      const e = new WarrenError(
        'ERR_HEADERS_TOO_LARGE',
        `the request head is larger than ${this.#settings.maxHeaderBytes} bytes`,
        {
          hint: 'Send smaller headers (often an oversized cookie), or raise proxy.maxHeaderBytes in config.json.',
        },
      )
      writeRawHttpError(socket, e)
      return
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      const e = new WarrenError(
        'ERR_TIMEOUT',
        `the request head did not arrive within ${this.#settings.headersTimeoutMs} ms`,
        { hint: 'Send the whole request head at once, or raise proxy.headersTimeoutMs.' },
      )
      writeRawHttpError(socket, e, { status: 408 })
      return
    }
    const e = new WarrenError('ERR_BAD_NAME', `the access port could not parse the request (${err.message})`, {
      hint: 'Speak HTTP/1.1 or SOCKS5 to the access port.',
    })
    writeRawHttpError(socket, e, { status: 400 })
  }

  /** Stops listening and closes every client connection and pooled stream. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#net.close(() => resolve()))
    for (const s of this.#sockets) s.destroy()
    this.#http.closeAllConnections()
    this.#gateway.close()
    this.#fast?.close()
    await closed
  }
}
