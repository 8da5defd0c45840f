/**
 * The Delegated Routing V1 HTTP API (IPIP-337/417), peers only: `GET /routing/v1/peers/{peer-id}` answers with the
 * addresses a relay knows for a peer, so that browsers, which cannot run a DHT, can find Warren nodes.
 *
 * - ids: base58 (`12D3KooW…`, `Qm…`) and CIDv1 `libp2p-key` in any multibase (`k51…` base36, `bafz…` base32);
 *   anything else is a 400 with a message saying what is wrong;
 * - `Accept: application/x-ndjson` gives one JSON record per line, anything else `{"Peers": […]}`;
 * - an unknown peer is a 200 with an empty list (empty body for NDJSON);
 * - CORS: `Access-Control-Allow-Origin: *` on every answer, and OPTIONS preflights answered with 204.
 *
 * @example
 * ```ts
 * const server = await startRoutingHttp({ host: '127.0.0.1', port: 0, find: async (id) => [...] })
 * // curl http://127.0.0.1:<port>/routing/v1/peers/12D3KooW…
 * await server.close()
 * ```
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromCID, peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { WarrenError } from '../errors.ts'

export const PEERS_PATH = '/routing/v1/peers/'
const NDJSON = 'application/x-ndjson'

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

/** Parses a peer id as the spec allows; throws a message saying what is wrong. */
export function parseRoutingPeerId(text: string): PeerId {
  if (text === '') throw new Error('the peer id is missing: use /routing/v1/peers/<peer id>')
  if (text.startsWith('1') || text.startsWith('Q')) {
    try {
      return peerIdFromString(text)
    } catch (err) {
      throw new Error(`"${text}" is not a base58 peer id (${(err as Error).message})`)
    }
  }
  let cid: CID
  try {
    cid = CID.parse(text, undefined)
  } catch {
    try {
      cid = CID.parse(text.toLowerCase().startsWith('k') ? text.toLowerCase() : text)
    } catch {
      throw new Error(`"${text}" is neither a base58 peer id (12D3KooW…) nor a CIDv1 peer id (k51…, bafz…)`)
    }
  }
  try {
    return peerIdFromCID(cid)
  } catch (err) {
    throw new Error(`"${text}" is a CID but not of a peer id (${(err as Error).message})`)
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}) {
  res.writeHead(status, { ...CORS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: RoutingHttpOptions): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://routing').pathname
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS)
    res.end()
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', `${req.method} is not supported: use GET ${PEERS_PATH}<peer id>\n`, {
      Allow: 'GET, HEAD, OPTIONS',
    })
    return
  }
  if (!path.startsWith(PEERS_PATH)) {
    send(
      res,
      404,
      'text/plain; charset=utf-8',
      `${path} is not served here: this relay answers GET ${PEERS_PATH}<peer id>\n`,
    )
    return
  }
  let id: PeerId
  try {
    id = parseRoutingPeerId(decodeURIComponent(path.slice(PEERS_PATH.length)))
  } catch (err) {
    send(res, 400, 'text/plain; charset=utf-8', `${(err as Error).message}\n`)
    return
  }
  const peers = await opts.find(id, AbortSignal.timeout(opts.timeoutMs ?? 10_000))
  // found records may change when the node moves; "not found" is rechecked sooner
  const cache = { 'Cache-Control': `public, max-age=${peers.length > 0 ? 60 : 15}`, Vary: 'Accept' }
  if ((req.headers.accept ?? '').includes(NDJSON)) {
    send(res, 200, NDJSON, peers.map((p) => `${JSON.stringify(p)}\n`).join(''), cache)
  } else send(res, 200, 'application/json', JSON.stringify({ Peers: peers }), cache)
}

export async function startRoutingHttp(opts: RoutingHttpOptions): Promise<RoutingHttpServer> {
  const log = opts.log ?? (() => {})
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((err: Error) => {
      log('warn', `delegated routing: ${req.url}: ${err.message}`)
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `lookup failed: ${err.message}\n`)
      else res.destroy()
    })
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
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
