/**
 * The host side of `"type": "http"` services: the service stream is parsed as HTTP/1.1 by a Node `http.Server`
 * (never listening; streams are handed to it as connections) and every request is carried to the TCP target with
 * `X-Warren-Peer: <node id of the caller>` added, after removing any `X-Warren-Peer` the caller sent. The caller's
 * id comes from the Noise handshake of the libp2p connection, so the app behind can trust it.
 *
 * Each stream gets its own upstream connection (the one the host opened to check the target before answering
 * OK), reopened if the target closes it between requests, so keep-alive on the caller's side maps onto
 * keep-alive towards the target. Upgrade requests (WebSockets) get a connection of their own.
 */
import {
  Agent,
  type ClientRequest,
  type ClientRequestArgs,
  createServer,
  type IncomingMessage,
  type Server,
} from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import { continueInOrder } from '../http/continue-in-order.ts'
import { type RawHeaders, setHeader, stripHopByHop, withoutHeaders } from '../http/forward-headers.ts'
import { KEEP_ALIVE_HINT_MARGIN_MS, KEEP_ALIVE_SEC, keepAliveTimeoutOf } from '../http/http1.ts'
import { proxyRequest, proxyUpgrade } from '../http/reverse-proxy.ts'
import { StreamSocket } from '../http/stream-socket.ts'

export const PEER_HEADER = 'X-Warren-Peer'

export interface HttpServeOptions {
  /** Caller's node id (base58). */
  peer: string
  service: string
  /** `host:port` of the target, for messages. */
  targetName: string
  /** Opens a new connection to the target. */
  connect(): Promise<Socket>
  maxHeaderBytes?: number
  responseTimeoutMs?: number
}

interface Context extends HttpServeOptions {
  agent: Agent
}

const contexts = new WeakMap<Duplex, Context>()
let server: Server | undefined

/** Request headers for the target: hop-by-hop and caller-sent `X-Warren-Peer` removed, the real one added. */
export function hostRequestHeaders(raw: RawHeaders, peer: string, upgrade: boolean): RawHeaders {
  const clean = withoutHeaders(stripHopByHop(raw, { upgrade, keepChunked: !upgrade }), new Set(['x-warren-peer']))
  return setHeader(clean, PEER_HEADER, peer)
}

function describe(ctx: Context): string {
  return `the target of service "${ctx.service}" (${ctx.targetName})`
}

function httpServer(): Server {
  if (server !== undefined) return server
  server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 })
  // a caller that half-closes right after its request (`printf … | nc -N`) still gets the response: without this,
  // Node's HTTP server drops the request on the client's FIN
  ;(server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
  continueInOrder(server)
  server.on('request', (req, res) => {
    const ctx = contexts.get(req.socket)
    if (ctx === undefined) return void res.destroy()
    void proxyRequest(req, res, {
      agent: ctx.agent,
      path: req.url ?? '/',
      headers: hostRequestHeaders(req.rawHeaders, ctx.peer, false),
      responseTimeoutMs: ctx.responseTimeoutMs ?? 300_000,
      maxHeaderBytes: ctx.maxHeaderBytes ?? 16_384,
      describe: describe(ctx),
      sent: noteExchange,
    })
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ctx = contexts.get(socket)
    if (ctx === undefined) return void socket.destroy()
    socket.on('error', () => {})
    void proxyUpgrade(req, socket, head, {
      open: () => ctx.connect(),
      path: req.url ?? '/',
      headers: hostRequestHeaders(req.rawHeaders, ctx.peer, true),
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  return server
}

/** When a connection's last request went to the target, and the target's `Keep-Alive: timeout=` hint, if any. */
interface Exchange {
  sent: number
  hintSec: number | undefined
}
const exchanges = new WeakMap<Socket, Exchange>()

/** Notes the exchange `out` makes on its connection once the target's response head is in. */
function noteExchange(out: ClientRequest): void {
  const sent = Date.now()
  out.once('response', (res: IncomingMessage) => {
    const hint = res.headers['keep-alive']
    const hintSec = typeof hint === 'string' ? keepAliveTimeoutOf(hint) : undefined
    if (out.socket !== null) exchanges.set(out.socket, { sent, hintSec })
  })
}

/**
 * One connection to the target at a time, starting with the one already open.
 *
 * A target's idle timer starts when it has written its last response, and a slow caller may hold that response back
 * (the stream paused) for seconds before the host has read the end of it: by then the target may be about to close
 * the connection, and a request sent on it would meet that close (an upload then fails with a 502, as it cannot be
 * sent again). So a connection is kept for the next request only while the target cannot have been idle on it for
 * its hint less {@link KEEP_ALIVE_HINT_MARGIN_MS} (or {@link KEEP_ALIVE_SEC} without a hint), counted from when the
 * request was sent; otherwise the next request gets a new connection.
 */
class TargetAgent extends Agent {
  #first: Socket | undefined
  readonly #connect: () => Promise<Socket>

  constructor(first: Socket, connect: () => Promise<Socket>) {
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 })
    this.#first = first
    this.#connect = connect
  }

  override keepSocketAlive(socket: Socket): boolean {
    const ex = exchanges.get(socket)
    exchanges.delete(socket)
    // Node's own rules first (its hint less 1 s, from now); typed void, it returns whether to keep the socket
    if (!(super.keepSocketAlive(socket) as unknown as boolean)) return false
    if (ex === undefined) return true
    const keepMs = ex.hintSec === undefined ? KEEP_ALIVE_SEC * 1000 : ex.hintSec * 1000 - KEEP_ALIVE_HINT_MARGIN_MS
    const left = keepMs - (Date.now() - ex.sent)
    if (left <= 0) return false
    // a free connection's time-out makes the agent let it go
    if (socket.timeout === undefined || socket.timeout === 0 || socket.timeout > left) socket.setTimeout(left)
    return true
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const first = this.#first
    this.#first = undefined
    if (first !== undefined && !first.destroyed) return first
    this.#connect().then(
      (s) => callback?.(null, s),
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    )
    return undefined
  }
}

/**
 * Serves HTTP on a service stream whose status (OK) has been sent; `first` is the open connection to the target.
 * Resolves when the stream is closed.
 */
export function serveHttpStream(stream: Stream, first: Socket, opts: HttpServeOptions): Promise<void> {
  const socket = new StreamSocket(stream, { remoteAddress: opts.peer })
  const agent = new TargetAgent(first, opts.connect)
  contexts.set(socket, { ...opts, agent })
  return new Promise<void>((resolve) => {
    socket.once('close', () => {
      agent.destroy()
      first.destroy()
      resolve()
    })
    httpServer().emit('connection', socket)
  })
}
