/**
 * The Delegated Routing V1 HTTP API (IPIP-337/417), peers only: `GET /routing/v1/peers/{peer-id}` answers with the
 * addresses a relay knows for a peer, so that browsers, which cannot run a DHT, can find Warren nodes.
 *
 * - ids: base58 (`12D3KooW…`, `Qm…`) and CIDv1 `libp2p-key` in any multibase (`k51…` base36, `bafz…` base32);
 *   anything else is a 400 with a message saying what is wrong;
 * - `Accept: application/x-ndjson` gives one JSON record per line, anything else `{"Peers": […]}`;
 * - an unknown peer is a 200 with an empty list (empty body for NDJSON);
 * - CORS: `Access-Control-Allow-Origin: *` on every answer, and OPTIONS preflights answered with 204;
 * - a request target that is neither a path nor an absolute `http(s)://` URL, longer than 2048 bytes, or not valid
 *   HTTP at all is a 400 with a message; such requests are logged at most once per `logIntervalMs` with a count of the
 *   others ({@link LogThrottle}), since anyone can send them.
 *
 * @example
 * ```ts
 * const server = await startRoutingHttp({ host: '127.0.0.1', port: 0, find: async (id) => [...] })
 * // curl http://127.0.0.1:<port>/routing/v1/peers/12D3KooW…
 * await server.close()
 * ```
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromCID, peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { WarrenError } from '../errors.ts'
import { LogThrottle } from '../log-throttle.ts'

export const PEERS_PATH = '/routing/v1/peers/'
const NDJSON = 'application/x-ndjson'
/** Longest request target served; a peer id is under 100 characters. */
export const MAX_TARGET_BYTES = 2048
const TEXT = 'text/plain; charset=utf-8'

/** One peer in an answer, as the spec's "peer" schema. */
export interface RoutingPeer {
  Schema: 'peer'
  ID: string
  Addrs: string[]
  Protocols?: string[]
}

export interface RoutingHttpOptions {
  host: string
  port: number
  /** The peers known for `id` (usually one, none when unknown). */
  find(id: PeerId, signal: AbortSignal): Promise<RoutingPeer[]>
  /** Time for one answer, ms (default 10000). */
  timeoutMs?: number
  log?: (level: 'debug' | 'warn', message: string) => void
  /** Malformed requests and failed lookups are logged at most once per this many ms each (default 10000). */
  logIntervalMs?: number
}

export interface RoutingHttpServer {
  /** `http://host:port` actually bound. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'Accept, Content-Type',
  'Access-Control-Max-Age': '86400',
}

/** `text` quoted for a message: control characters escaped, at most 80 characters. */
export function quoted(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)
}

/** Parses a peer id as the spec allows; throws a message saying what is wrong. */
export function parseRoutingPeerId(text: string): PeerId {
  if (text === '') throw new Error('the peer id is missing: use /routing/v1/peers/<peer id>')
  if (text.startsWith('1') || text.startsWith('Q')) {
    try {
      return peerIdFromString(text)
    } catch (err) {
      throw new Error(`${quoted(text)} is not a base58 peer id (${(err as Error).message})`)
    }
  }
  let cid: CID
  try {
    cid = CID.parse(text, undefined)
  } catch {
    try {
      cid = CID.parse(text.toLowerCase().startsWith('k') ? text.toLowerCase() : text)
    } catch {
      throw new Error(`${quoted(text)} is neither a base58 peer id (12D3KooW…) nor a CIDv1 peer id (k51…, bafz…)`)
    }
  }
  try {
    return peerIdFromCID(cid)
  } catch (err) {
    throw new Error(`${quoted(text)} is a CID but not of a peer id (${(err as Error).message})`)
  }
}

/**
 * The path of a request target, origin-form (`/routing/…`) or absolute-form (`http://host/routing/…`, RFC 9112
 * §3.2.2), without its query; or why the target is not one.
 */
export function targetPath(target: string): { path: string } | { error: string } {
  const bytes = Buffer.byteLength(target)
  if (bytes > MAX_TARGET_BYTES) {
    return {
      error: `the request target is ${bytes} bytes long; this server takes at most ${MAX_TARGET_BYTES} (GET ${PEERS_PATH}<peer id>)`,
    }
  }
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target)
  if (absolute !== null && !URL.canParse(target)) {
    return { error: `the request target ${quoted(target)} is not a valid URL: use GET ${PEERS_PATH}<peer id>` }
  }
  const rest = absolute === null ? target : target.slice(absolute[0].length) || '/'
  if (!rest.startsWith('/')) {
    return {
      error: `the request target ${quoted(target)} is neither a path nor an http:// URL: use GET ${PEERS_PATH}<peer id>`,
    }
  }
  const end = rest.search(/[?#]/)
  const path = end === -1 ? rest : rest.slice(0, end)
  if (path.includes('//')) return { error: `the path ${quoted(path)} has an empty segment (//)` }
  if (/%(?![0-9a-f]{2})/i.test(path)) {
    return { error: `the path ${quoted(path)} is not valid percent-encoding (a % must be followed by two hex digits)` }
  }
  return { path }
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}) {
  res.writeHead(status, { ...CORS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

/** Thrown for a request that is not one this server can answer: a 400 with the message, logged (throttled). */
class MalformedRequest extends Error {}

async function handle(req: IncomingMessage, res: ServerResponse, opts: RoutingHttpOptions): Promise<void> {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS)
    res.end()
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, TEXT, `${req.method} is not supported: use GET ${PEERS_PATH}<peer id>\n`, {
      Allow: 'GET, HEAD, OPTIONS',
    })
    return
  }
  const target = targetPath(req.url ?? '')
  if ('error' in target) throw new MalformedRequest(target.error)
  const path = target.path
  if (!path.startsWith(PEERS_PATH)) {
    send(res, 404, TEXT, `${quoted(path)} is not served here: this relay answers GET ${PEERS_PATH}<peer id>\n`)
    return
  }
  let text: string
  try {
    text = decodeURIComponent(path.slice(PEERS_PATH.length))
  } catch {
    throw new MalformedRequest(`the peer id in ${quoted(path)} is not percent-encoded UTF-8`)
  }
  let id: PeerId
  try {
    id = parseRoutingPeerId(text)
  } catch (err) {
    send(res, 400, TEXT, `${(err as Error).message}\n`)
    return
  }
  const peers = await opts.find(id, AbortSignal.timeout(opts.timeoutMs ?? 10_000))
  // found records may change when the node moves; "not found" is rechecked sooner
  const cache = { 'Cache-Control': `public, max-age=${peers.length > 0 ? 60 : 15}`, Vary: 'Accept' }
  if ((req.headers.accept ?? '').includes(NDJSON)) {
    send(res, 200, NDJSON, peers.map((p) => `${JSON.stringify(p)}\n`).join(''), cache)
  } else send(res, 200, 'application/json', JSON.stringify({ Peers: peers }), cache)
}

/** Node's words for a request its HTTP parser refused, for the 400's body. */
function parseProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'the request line and headers are longer than 16 KiB'
    case 'HPE_INVALID_URL':
      return 'the request target is not a valid URL (only printable ASCII; percent-encode the rest)'
    default:
      return `the request is not valid HTTP/1.1 (${err.code ?? err.message})`
  }
}

function clientAddress(socket: Socket | null | undefined): string {
  return socket?.remoteAddress ?? 'an unknown address'
}

export async function startRoutingHttp(opts: RoutingHttpOptions): Promise<RoutingHttpServer> {
  const log = opts.log ?? (() => {})
  const throttle = new LogThrottle({
    intervalMs: opts.logIntervalMs ?? 10_000,
    emit: (line) => log('warn', `delegated routing: ${line}`),
  })
  const malformed = (from: string, why: string): void =>
    throttle.log('malformed', `refused a malformed request from ${from}: ${why}`, 'malformed requests refused')
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((err: Error) => {
      if (err instanceof MalformedRequest) {
        malformed(clientAddress(req.socket), err.message)
        if (!res.headersSent) send(res, 400, TEXT, `${err.message}\n`)
        return
      }
      throttle.log('lookup', `${quoted(req.url ?? '')}: ${err.message}`, 'lookups failed')
      if (!res.headersSent) send(res, 500, TEXT, `lookup failed: ${err.message}\n`)
      else res.destroy()
    })
  })
  // requests Node's HTTP parser refuses never reach the handler: answer them with a clear 400 too
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.end('HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    const why = parseProblem(err)
    malformed(clientAddress(socket), why)
    const body = `${why}\n`
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: ${TEXT}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n${body}`,
    )
  })
  server.requestTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new WarrenError(
          'ERR_LISTEN_FAILED',
          `the delegated routing HTTP server cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message}`,
          {
            hint: 'Pass another port with --routing <port> (or routing.port in relay.json), or stop the process that holds it.',
            cause: err,
          },
        ),
      ),
    )
    server.listen(opts.port, opts.host, () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        throttle.close()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
