/**
 * A Warren node in a page or a worker: its own Ed25519 key (IndexedDB), reservations on its relays (reachable by its
 * id or ticket), and the Node library's calls over the same protocols: service streams, HTTP `fetch` through a
 * service, ping, lookup, RPC both ways and custom protocols. Every connection is Noise end to end with the node at
 * the other end; the relay forwards ciphertext.
 *
 * @example
 * ```ts
 * const node = await startBrowserNode({ relays: ['/dns4/relay.example/tcp/443/wss/p2p/12D3KooW…'] })
 * const res = await node.fetch(ticket, 'web', '/index.html')
 * node.rpc.register('hello', (params, { caller }) => `hi ${caller}`, { allow: '*' })
 * ```
 */
import type { Connection, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { type ErrorCode, isWarrenError, WarrenError } from '../errors.ts'
import { encodeTicket } from '../identity/ticket.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { bestConnection, isRelayed } from '../p2p/path.ts'
import { callOn } from '../rpc/client.ts'
import { type RegisterOptions, type RpcAllow, type RpcHandler, RpcMethods } from '../rpc/methods.ts'
import { RpcServer } from '../rpc/server.ts'
import { openServiceStream } from '../services/dial.ts'
import { type ByteDuplex, toByteDuplex } from './byte-stream.ts'
import { fetchOver } from './http1-client.ts'
import { loadOrCreateKey } from './key-store.ts'
import { type BrowserLibp2p, createBrowserLibp2p } from './libp2p.ts'
import { dialAddrs, lookupVia, parseRelays, parseTarget } from './target.ts'
import { type PathState, type WebRtcPathOptions, WebRtcPaths } from './webrtc-path.ts'
import { type ServiceWebSocket, upgradeWebSocket } from './websocket.ts'

export interface BrowserNodeOptions {
  /** Relay WebSocket addresses ending in /p2p/<relay id> (`/dns4/relay.example/tcp/443/wss/p2p/12D3KooW…`). */
  relays: string[]
  /** The node's key; absent: the one kept in IndexedDB, made on first use. */
  key?: PrivateKey
  /** Delegated Routing endpoints for `lookup` by id (`https://relay.example:8080`). */
  routing?: string[]
  /** Who may call RPC methods registered without their own `allow` (default: nobody). */
  rpcAllow?: RpcAllow
  /** Time to reach a relay and reserve on it, ms (default 15 s). */
  startTimeoutMs?: number
  /** Time to reach another node, ms (default 15 s). */
  dialTimeoutMs?: number
  /**
   * Direct WebRTC paths to the nodes reached through a relay (default: on where the browser has RTCPeerConnection);
   * `false` keeps every connection on the relays. ICE servers default to the relays' STUN responders.
   */
  webrtc?: false | WebRtcPathOptions
}

export interface HandlerContext {
  /** The caller's node id, from the Noise handshake. */
  caller: string
}

export type StreamHandler = (stream: ByteDuplex, ctx: HandlerContext) => void | Promise<void>

/** What redeeming an invite answers (src/node/invites.ts). */
export interface InviteRedeemed {
  service: string
  /** The node admitted: this browser node. */
  node: string
  /** True when this node had redeemed the code before. */
  already: boolean
}

export interface LookupAnswer {
  id: string
  addrs: string[]
}

export class BrowserNode {
  readonly libp2p: BrowserLibp2p
  readonly peerId: PeerId
  /** RPC methods this node answers on `/warren/rpc/1.0.0`. */
  readonly rpc: Pick<RpcMethods, 'register' | 'unregister'>
  readonly #relays: Map<string, Multiaddr>
  readonly #routing: string[]
  readonly #dialTimeoutMs: number
  readonly #opts: BrowserNodeOptions
  readonly #server: RpcServer
  /** WebRTC paths; undefined when off. */
  readonly #paths: WebRtcPaths | undefined

  constructor(
    libp2p: BrowserLibp2p,
    relays: Map<string, Multiaddr>,
    opts: BrowserNodeOptions,
    paths: WebRtcPaths | undefined,
  ) {
    this.#paths = paths
    this.#opts = opts
    this.libp2p = libp2p
    this.peerId = libp2p.peerId
    this.#relays = relays
    this.#routing = opts.routing ?? []
    this.#dialTimeoutMs = opts.dialTimeoutMs ?? 15_000
    const allow = opts.rpcAllow === undefined || opts.rpcAllow === '*' ? opts.rpcAllow : new Set(opts.rpcAllow)
    const methods = new RpcMethods({
      allowed: () => (allow === '*' ? undefined : (allow ?? new Set<string>())),
      public: () => new Set<string>(),
    })
    this.rpc = {
      register: (name: string, handler: RpcHandler, o?: RegisterOptions) => methods.register(name, handler, o),
      unregister: (name: string) => methods.unregister(name),
    }
    this.#server = new RpcServer(libp2p as unknown as WarrenLibp2p, methods)
  }

  /** Starts answering RPC, and learns the relays' STUN ports for WebRTC (in the background). */
  async start(): Promise<void> {
    await this.#server.start()
    void this.#paths?.learnStun(this.#relays, this.#iceGiven)
  }

  get #iceGiven(): boolean {
    return this.#opts.webrtc !== false && this.#opts.webrtc?.iceServers !== undefined
  }

  /** The node id (base58). */
  get id(): string {
    return this.peerId.toString()
  }

  /** The relay addresses this node is reachable at now (circuits through its relays). */
  get addrs(): Multiaddr[] {
    return this.libp2p
      .getMultiaddrs()
      .filter((a) => a.getComponents().some((c) => c.name === 'p2p-circuit'))
      .map((a) => a.decapsulateCode(421))
  }

  /** A ticket naming this node and its relay addresses, as `warren id` prints one. */
  get ticket(): string {
    return encodeTicket({ id: this.peerId, addrs: this.addrs })
  }

  /**
   * A connection to the node named by `target` (id or ticket): its WebRTC tunnel when one is open, else through a
   * relay (and a WebRTC path is tried in the background).
   */
  async connect(target: string): Promise<Connection> {
    const { id, addrs } = parseTarget(target)
    if (id.equals(this.peerId)) {
      throw new WarrenError('ERR_BAD_TARGET', 'that is this browser node itself', { hint: 'Give another node.' })
    }
    const open = bestConnection(this.libp2p.getConnections(id))
    if (open !== undefined) return this.#tryDirect(open)
    let candidates = dialAddrs(id, addrs, this.#relays)
    if (addrs.length === 0 && this.#routing.length > 0) {
      const found = await lookupVia(this.#routing, id).catch(() => [])
      candidates = dialAddrs(id, found, this.#relays)
    }
    let conn: Connection
    try {
      conn = await this.libp2p.dial(candidates, { signal: AbortSignal.timeout(this.#dialTimeoutMs) })
    } catch (err) {
      throw dialError(id, candidates, err)
    }
    return this.#tryDirect(conn)
  }

  /** Starts a WebRTC attempt over a relayed connection (once at a time per node); returns the connection. */
  #tryDirect(conn: Connection): Connection {
    if (this.#paths !== undefined && isRelayed(conn)) void this.#paths.upgrade(conn)
    return conn
  }

  /**
   * The path to `target`, after its WebRTC attempt (connecting first if needed): `webrtc` when a direct tunnel is
   * open, else `relay` with the reason.
   */
  async path(target: string): Promise<PathState> {
    const conn = await this.connect(target)
    if (this.#paths === undefined) return { path: 'relay', reason: 'WebRTC is off in this browser node' }
    if (!isRelayed(conn)) return this.#paths.state(conn.remotePeer)
    return this.#paths.upgrade(conn)
  }

  /** A byte stream to `service` on `target`; ERR_UNKNOWN_SERVICE, ERR_NOT_AUTHORIZED … when the node refuses it. */
  async openService(target: string, service: string, opts: { timeoutMs?: number } = {}): Promise<ByteDuplex> {
    const conn = await this.connect(target)
    const stream = await openServiceStream(conn, service, { selfId: this.id, timeoutMs: opts.timeoutMs ?? 30_000 })
    return toByteDuplex(stream, conn.remotePeer.toString())
  }

  /**
   * HTTP/1.1 through `service` on `target`: `input` is a path (`/api?x=1`), a URL (only its path and query are
   * used) or a `Request`. Resolves with a standard `Response` once its head arrived; both bodies stream.
   */
  async fetch(target: string, service: string, input: string | Request, init?: RequestInit): Promise<Response> {
    const base = `http://${service}.warren/`
    const request = typeof input === 'string' ? new Request(new URL(input, base), init) : new Request(input, init)
    const duplex = await this.openService(target, service)
    return fetchOver(duplex, request, `${service}.warren`)
  }

  /** A WebSocket to `path` (default `/`) of the HTTP service `service` on `target`; resolves once it is open. */
  async webSocket(target: string, service: string, path = '/', protocols: string[] = []): Promise<ServiceWebSocket> {
    return upgradeWebSocket(await this.openService(target, service), `${service}.warren`, path, protocols)
  }

  /** Round-trip time to `target`, ms. */
  async ping(target: string): Promise<number> {
    const conn = await this.connect(target)
    try {
      return await this.libp2p.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(this.#dialTimeoutMs) })
    } catch (err) {
      throw new WarrenError('ERR_TIMEOUT', `node ${conn.remotePeer} did not answer a ping: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }

  /** The addresses the relays' Delegated Routing endpoints know for `id`. */
  async lookup(id: string): Promise<LookupAnswer> {
    const peer = parseTarget(id).id
    const addrs = await lookupVia(this.#routing, peer)
    return { id: peer.toString(), addrs: addrs.map(String) }
  }

  /** Calls RPC `method` on `target`; resolves with its result (errors: ERR_RPC_*, as on the Node side). */
  async call(target: string, method: string, params?: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    return callOn(await this.connect(target), method, params, { selfId: this.id, ...opts })
  }

  /**
   * Redeems an invite (`warren invite <service>` on `target`): the node adds this browser's node id to the service's
   * `allow` list. Errors: ERR_INVITE_INVALID, ERR_INVITE_EXPIRED, ERR_INVITE_USED, ERR_INVITE_RATE_LIMITED.
   * A relayed connection opened while this node was a stranger keeps the relay's limits for strangers, so once
   * admitted it is closed: the next call opens a new circuit, which the relay no longer bounds once the node has told
   * it whom it admits (docs/browser.md, "Admitting a browser").
   */
  async redeemInvite(target: string, service: string, code: string): Promise<InviteRedeemed> {
    const conn = await this.connect(target)
    const answer = (await callOn(conn, '_invite.redeem', { service, code }, { selfId: this.id })) as InviteRedeemed
    if (conn.limits !== undefined) await conn.close().catch(() => {})
    return answer
  }

  /** Answers streams of `protocol` (for example `/myapp/chat/1.0.0`) with `handler`. */
  async handle(protocol: string, handler: StreamHandler): Promise<void> {
    await this.libp2p.handle(
      protocol,
      (stream, conn) => {
        const caller = conn.remotePeer.toString()
        void Promise.resolve()
          .then(() => handler(toByteDuplex(stream, caller), { caller }))
          .catch((err: Error) => stream.abort(err))
      },
      { runOnLimitedConnection: true },
    )
  }

  /** Opens a stream of `protocol` on `target` (a node whose page or program called `handle`). */
  async dialProtocol(target: string, protocol: string): Promise<ByteDuplex> {
    const conn = await this.connect(target)
    try {
      const stream = await conn.newStream(protocol, {
        runOnLimitedConnection: true,
        signal: AbortSignal.timeout(this.#dialTimeoutMs),
      })
      return toByteDuplex(stream, conn.remotePeer.toString())
    } catch (err) {
      const unsupported = (err as Error).name === 'UnsupportedProtocolError'
      throw new WarrenError(
        unsupported ? 'ERR_PROTOCOL' : 'ERR_DIAL_FAILED',
        `node ${conn.remotePeer} ${unsupported ? `does not answer ${protocol}` : `refused a stream: ${(err as Error).message}`}`,
        { cause: err },
      )
    }
  }

  async stop(): Promise<void> {
    await this.#server.stop().catch(() => {})
    await this.libp2p.stop()
  }
}

function dialError(id: PeerId, tried: Multiaddr[], err: unknown): WarrenError {
  if (isWarrenError(err)) return err
  const e = err as Error
  const causes = [e, ...((e as { errors?: Error[] }).errors ?? [])].map((x) => x.message).join('; ')
  const offline = /NO_RESERVATION|no reservation/i.test(causes)
  const code: ErrorCode = tried.length === 0 ? 'ERR_NO_ADDRESSES' : 'ERR_DIAL_FAILED'
  return new WarrenError(
    code,
    tried.length === 0
      ? `no address a browser can use is known for node ${id}`
      : offline
        ? `node ${id} is not reachable through the relay: it is offline or not reserved there`
        : `could not reach node ${id}: ${causes}`,
    {
      hint: offline
        ? 'Check that the node is running and uses the same relay (`warren status` on it), or use its current ticket.'
        : "Use the node's ticket (`warren id`), which names its relays, and check that a relay is reachable over WebSocket.",
      details: { node: id.toString(), tried: tried.map(String) },
      cause: err,
    },
  )
}

/** Starts a browser node: reaches its relays over WebSocket and keeps a reservation on each. */
export async function startBrowserNode(opts: BrowserNodeOptions): Promise<BrowserNode> {
  const relays = parseRelays(opts.relays)
  const privateKey = opts.key ?? (await loadOrCreateKey())
  const webrtc =
    opts.webrtc !== false && typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection === 'function'
  let paths: WebRtcPaths | undefined
  const libp2p = await createBrowserLibp2p({
    privateKey,
    listen: [...relays.values()].map((r) => `${r}/p2p-circuit`),
    dialTimeoutMs: opts.dialTimeoutMs ?? 15_000,
    ...(webrtc ? { webrtc: { iceServers: () => paths?.iceServers() ?? [] } } : {}),
  })
  if (webrtc) paths = new WebRtcPaths(libp2p, opts.webrtc === false ? {} : (opts.webrtc ?? {}))
  const node = new BrowserNode(libp2p, relays, opts, paths)
  const unreachable = (cause?: unknown): WarrenError =>
    new WarrenError(
      'ERR_RELAY_UNREACHABLE',
      `could not reach or reserve on any relay (${[...relays.values()].join(', ')})${cause === undefined ? '' : `: ${(cause as Error).message}`}`,
      {
        hint: 'Check the relay address and that the relay listens for WebSocket (`warren relay --ws <port>`); pages served over https need a wss:// relay.',
        details: { relays: opts.relays, node: peerIdFromPrivateKey(privateKey).toString() },
        cause,
      },
    )
  const timeoutMs = opts.startTimeoutMs ?? 15_000
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      libp2p.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no reservation within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    if (node.addrs.length === 0) throw new Error('no relay accepted a reservation')
    await node.start()
  } catch (err) {
    await Promise.resolve(libp2p.stop()).catch(() => {})
    throw unreachable(err)
  } finally {
    clearTimeout(timer)
  }
  return node
}
