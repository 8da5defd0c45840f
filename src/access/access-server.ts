/**
 * The access port (default 127.0.0.1:4780): SOCKS5, the HTTP proxy (CONNECT and absolute-form), the PAC file
 * and the HTTP gateway on one listener. The first byte tells SOCKS5 (0x05) from HTTP; HTTP connections go to
 * the gateway's fast path when it can carry them, else to one Node `http.Server`. The node's own pages (its
 * dashboard, local-pages.ts) are served at `warren.localhost:<port>` once the daemon sets their handler. Where each
 * request goes is decided by the router (routes.ts); this file owns the listener, the connection caps
 * (access-guard.ts), the request-head deadlines, and carrying out the router's decisions.
 */

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { formatListenAddress, parseListenAddress } from '../config/listen-address.ts'
import { WarrenError } from '../errors.ts'
import { FastPath } from '../gateway/fast/fast-path.ts'
import { Gateway } from '../gateway/gateway.ts'
import { HostPolicy } from '../gateway/origins.ts'
import { continueInOrder } from '../http/continue-in-order.ts'
import { withoutHeaders } from '../http/forward-headers.ts'
import { sendHttpError, writeRawHttpError } from '../http/http-errors.ts'
import type { Logger } from '../log.ts'
import { AccessGuard } from './access-guard.ts'
import type { AccessBackend } from './backend.ts'
import { HeadDeadlines, headTimeout } from './head-deadlines.ts'
import type { LocalPages } from './local-pages.ts'
import { PAC_CONTENT_TYPE, pacFile } from './pac.ts'
import { PIPELINE_DEPTH, PIPELINE_WAITING, PipelineGate } from './pipeline-gate.ts'
import { unknownPage } from './request-targets.ts'
import { type AccessRequest, AccessRouter, type Refusal } from './routes.ts'
import type { AddressTable } from './service-addresses.ts'
import type { AccessSettings } from './settings.ts'
import { handleSocks5 } from './socks5.ts'
import { openTunnel, type TunnelContext } from './tunnels.ts'

export interface AccessServerOptions {
  settings: AccessSettings
  backend: AccessBackend
  addresses: AddressTable
  log?: Logger
  /** The node's own pages at `warren.localhost:<port>` (the daemon's dashboard), once their handler is set. */
  pages?: LocalPages | undefined
}

const SOCKS_VERSION = 5
const AUTHORIZATION = new Set(['authorization'])

export class AccessServer {
  readonly #settings: AccessSettings
  readonly #log: Logger
  readonly #gateway: Gateway
  readonly #tunnels: TunnelContext
  readonly #http: Server
  readonly #net: NetServer
  /** Plain gateway and proxy requests without Node's HTTP server (off with proxy.auth). */
  readonly #fast: FastPath | undefined
  readonly #router: AccessRouter
  readonly #sockets = new Set<Socket>()
  readonly #heads: HeadDeadlines
  /** Local users and connection caps (src/access/access-guard.ts). */
  readonly #guard: AccessGuard
  readonly #pages: LocalPages | undefined
  /** A bound on each connection's pipelined requests under way on the full path (pipeline-gate.ts). */
  readonly #pipeline = new PipelineGate({
    onOverflow: () =>
      this.#log(
        'warn',
        `access port: closed a connection with ${PIPELINE_DEPTH + PIPELINE_WAITING} pipelined requests unanswered (at most ${PIPELINE_DEPTH} under way and ${PIPELINE_WAITING} waiting)`,
      ),
  })
  #listen = ''
  /** The port actually bound (Host names are checked against it), known once listening. */
  #port = 0

  private constructor(opts: AccessServerOptions) {
    this.#settings = opts.settings
    this.#pages = opts.pages
    this.#log = opts.log ?? (() => {})
    const s = opts.settings
    this.#heads = new HeadDeadlines(s.headersTimeoutMs)
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
    this.#router = new AccessRouter({
      tld: s.tld,
      auth: s.auth,
      gatewayEnabled: s.gateway.enabled,
      // Host names served as a web server (origins.ts)
      policy: new HostPolicy(() => this.#port, s.hosts),
      addresses: opts.addresses,
      backend: opts.backend,
      pages: { ready: () => this.#pages?.handler !== undefined, port: () => this.#port },
    })
    this.#http.on('request', (req, res) => this.#onRequest(req, res))
    continueInOrder(this.#http)
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
        route: (head) => this.#router.fastRoute(head),
        handOver: (socket, buffered) => {
          if (buffered !== undefined) socket.unshift(buffered)
          this.#http.emit('connection', socket)
          socket.resume()
        },
        headArrived: (socket) => this.#heads.arrived(socket),
        awaitingHead: (socket) => this.#heads.awaitNext(socket),
        log: this.#log,
      })
    }
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
    this.#heads.start(socket)
    socket.once('close', () => {
      this.#sockets.delete(socket)
      this.#heads.closed(socket)
    })
    // a client that half-closes before its first byte can send nothing more: let it go now, not at the head
    // deadline (the server allows half-open connections for tunnels, so Node would keep it)
    const endedSilent = (): void => {
      socket.destroy()
    }
    socket.once('end', endedSilent)
    socket.once('data', (chunk: Buffer) => {
      socket.off('end', endedSilent)
      if (chunk[0] !== SOCKS_VERSION && this.#fast !== undefined) {
        this.#fast.accept(socket, chunk)
        return
      }
      socket.pause()
      socket.unshift(chunk)
      if (chunk[0] === SOCKS_VERSION) {
        this.#heads.arrived(socket) // the SOCKS5 handshake has its own deadline
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

  /** With proxy.auth, a gateway request may carry our credentials in `Authorization`: they stop here. */
  #dropOwnCredentials(req: IncomingMessage, route: { ownCredentials: boolean }): void {
    if (route.ownCredentials) req.rawHeaders = withoutHeaders(req.rawHeaders, AUTHORIZATION)
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#heads.arrived(req.socket)
    res.once('finish', () => {
      if (req.complete) this.#heads.awaitNext(req.socket)
      else req.once('end', () => this.#heads.awaitNext(req.socket))
    })
    this.#pipeline.admit(req.socket, res, () => this.#serve(req, res))
  }

  /** Carries out the router's decision for a request whose turn on its connection has come. */
  #serve(req: IncomingMessage, res: ServerResponse): void {
    const route = this.#router.request(routed(req))
    if (route.kind === 'forward') {
      this.#dropOwnCredentials(req, route)
      return void this.#gateway.forward(req, res, route.spec)
    }
    req.resume()
    if (route.kind === 'redirect') {
      res.writeHead(route.status, { location: route.location, 'content-length': 0, 'cache-control': 'no-store' })
      return void res.end()
    }
    if (route.kind === 'page') {
      const serve = this.#pages?.handler
      if (serve !== undefined) return void serve(req, res, route.scope)
      return void sendHttpError(res, unknownPage(req.url ?? '/', this.#settings.tld))
    }
    if (route.kind === 'pac') {
      const body = pacFile(req.headers.host ?? this.#listen, this.#settings.tld)
      res.writeHead(200, { 'content-type': PAC_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
      return void res.end(req.method === 'HEAD' ? undefined : body)
    }
    sendHttpError(res, route.error, refusal(route))
  }

  #onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.#heads.arrived(socket)
    socket.on('error', () => {})
    const route = this.#router.connect(routed(req))
    if (route.kind === 'refuse') return void writeRawHttpError(socket, route.error, refusal(route))
    socket.pause()
    openTunnel(route.host, this.#tunnels).then(
      (join) => {
        if (!socket.destroyed) socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        // the bytes after the head go first through the tunnel (unshift fails once the client's FIN came with them)
        join(socket, head)
      },
      (err: unknown) => {
        this.#log('info', `CONNECT ${req.url}: ${(err as Error).message}`)
        writeRawHttpError(socket, err)
      },
    )
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#heads.arrived(socket)
    socket.on('error', () => {})
    const route = this.#router.upgrade(routed(req))
    if (route.kind === 'refuse') return void writeRawHttpError(socket, route.error, refusal(route))
    this.#dropOwnCredentials(req, route)
    this.#gateway.forwardUpgrade(req, socket, head, route.spec)
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
      writeRawHttpError(socket, headTimeout(this.#settings.headersTimeoutMs), { status: 408 })
      return
    }
    const e = new WarrenError('ERR_BAD_REQUEST', `the access port could not parse the request (${err.message})`, {
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

/** What the router reads of a request Node's HTTP server parsed. */
function routed(req: IncomingMessage): AccessRequest {
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    host: req.headers.host,
    raw: req.rawHeaders,
    headers: req.headers,
  }
}

/** The status override of a refusal, if it has one. */
function refusal(route: Refusal): { status?: number } {
  return route.status === undefined ? {} : { status: route.status }
}
