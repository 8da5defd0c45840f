/**
 * Direct paths for a node: whenever this node dials a peer and gets a relayed connection, try to upgrade it to a
 * direct UDX connection in the background (`/warren/punch/1.0.0`, see direct-path.ts), and answer the peer's own
 * attempts. The relayed connection stays open as the fallback; new streams move to the direct one as soon as it
 * exists (src/p2p/path.ts prefers direct connections), streams already open on the relay finish there.
 *
 * STUN servers are the relays' STUN responders: the host of each relay address in config `relays`, and of the relay
 * a relayed connection runs through, with the port the relay announces on `/warren/relay/1.0.0`.
 *
 * A direct path can die later: a NAT forgets or changes its mapping (router restart, flushed or expired conntrack
 * entry). {@link PathWatch} closes a UDX connection that has been silent for 3 s; when a relayed connection to the peer
 * is still open, the status turns `relayed` (new streams take the relay) and the side that dialed the relayed
 * connection punches again at once, then after 1, 2, 4, 8 and 16 s, at most {@link REPUNCH_ATTEMPTS} times.
 *
 * A first upgrade that fails is tried again after 1 s and 30 s ({@link FIRST_RETRIES}), unless both NATs map each
 * destination to a new port (symmetric × symmetric), where no punch can meet.
 *
 * @example
 * ```ts
 * const paths = new DirectPaths(libp2p, hub, { relays: config.relays, log })
 * await paths.start()
 * paths.status()   // { '12D3KooW…': { state: 'direct', plan: 'simultaneous', ms: 71 } }
 * ```
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { toWarrenError, WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { isRelayed } from '../../p2p/path.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import { PathWatch } from '../../p2p/udx/path-watch.ts'
import { type UdxHub, udpEndpointOf } from '../../p2p/udx/transport.ts'
import { parseRelayAddr } from '../../relay/client/home-relay.ts'
import { queryRelayInfo } from '../../relay/info.ts'
import { type NetcheckReport, netcheck } from '../net-report/netcheck.ts'
import { PUNCH_PROTOCOL } from '../punch/messages.ts'
import { punchedSocket } from '../punch/tcp-punch.ts'
import { type DirectPathOptions, type DirectPathResult, handleDirectPath, upgradeToDirect } from './attempt.ts'
import { TcpPathWatch } from './tcp-path-watch.ts'

/**
 * Retries of a first upgrade that failed, at most: a birthday attempt that missed (p ≈ 0.95 per try in the lab), or
 * UDP that was blocked for a moment. Not when both NATs map per destination: no punch can meet there.
 */
export const FIRST_RETRIES = 2

/** Wait before retry `n` (1, 2) of a failed first upgrade: 1 s, then 30 s. */
export function firstRetryDelay(n: number): number {
  return n <= 1 ? 1_000 : 30_000
}

/** Re-punches after a lost direct path, at most (the first at once, then after {@link repunchDelay}). */
export const REPUNCH_ATTEMPTS = 6

/** Wait before re-punch attempt `n` (2, 3, …): 1 s, doubling, at most 30 s. */
export function repunchDelay(n: number): number {
  return Math.min(1000 * 2 ** (n - 2), 30_000)
}

export interface DirectPathStatus {
  state: 'upgrading' | 'direct' | 'relayed'
  /** How the NATs were punched, once direct. */
  plan?: string
  /** Time from the start of the upgrade to the direct connection, ms. */
  ms?: number
  /** Why the path stays relayed. */
  reason?: string
  /** How many times a direct path to this peer was lost (closed while the relayed connection stayed). */
  lost?: number
  /** The re-punch attempt running, failed or (with `direct`) successful, since the last loss. */
  attempt?: number
  /** The retry of a failed first upgrade running, failed or (with `direct`) successful. */
  retry?: number
  /** When the next re-punch runs (epoch ms), while one is scheduled. */
  retryAt?: number
  at: number
}

export interface DirectPathsOptions {
  /** Config `relays` (`…/p2p/<relay id>`): their STUN responders tell this node its public UDP mapping. */
  relays: readonly string[]
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void
  /** Bound on one upgrade, ms (default 15000). */
  timeoutMs?: number
  /** Silence after which a direct path counts as lost, ms (default 3000, see path-watch.ts). */
  silentMs?: number
  /** Try TCP simultaneous open before UDX (config traversal.tcp, default true). */
  tcp?: boolean
  /** Decides on a peer's punch request: undefined answers it, a string refuses it with that reason (punch-gate.ts). */
  admit?: (peer: PeerId) => string | undefined
}

/** The relay a relayed connection runs through: `/…/p2p/<relay>/p2p-circuit/…` → the part before `/p2p-circuit`. */
function relayOf(conn: Connection): string | undefined {
  const addr = conn.remoteAddr.toString()
  const i = addr.indexOf('/p2p-circuit')
  return i > 0 ? addr.slice(0, i) : undefined
}

const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.host === b.host && a.port === b.port

/** A direct connection this class makes and re-makes: UDX (`/ip4|ip6/…/udp/…`) or a punched TCP one. */
const isPunched = (conn: Connection): boolean =>
  udpEndpointOf(conn.remoteAddr) !== undefined || punchedSocket(conn) !== undefined

/** `host:port` of a punched connection's far end (the key of the watches' reasons), else undefined. */
function punchedKey(conn: Connection): string | undefined {
  const udp = udpEndpointOf(conn.remoteAddr)
  if (udp !== undefined) return `${udp.host}:${udp.port}`
  const socket = punchedSocket(conn)
  return socket === undefined ? undefined : `tcp ${conn.remoteAddr.toString()}`
}

export class DirectPaths {
  readonly hub: UdxHub
  readonly #libp2p: WarrenLibp2p
  readonly #opts: DirectPathsOptions
  readonly #log: NonNullable<DirectPathsOptions['log']>
  readonly #status = new Map<string, DirectPathStatus>()
  readonly #running = new Map<string, Promise<void>>()
  /** STUN endpoints learned per relay address. */
  readonly #stun = new Map<string, Endpoint>()
  /** Scheduled re-punches per peer. */
  readonly #repunch = new Map<string, NodeJS.Timeout>()
  /** Why the watch closed a stream, by remote `host:port`, until its connection's close is handled (or a minute). */
  readonly #silent = new Map<string, { why: string; at: number }>()
  readonly #watch: PathWatch
  readonly #tcpWatch: TcpPathWatch
  #stopped = false
  #retry: NodeJS.Timeout | undefined

  constructor(libp2p: WarrenLibp2p, hub: UdxHub, opts: DirectPathsOptions) {
    this.#libp2p = libp2p
    this.hub = hub
    this.#opts = opts
    this.#log = opts.log ?? (() => {})
    this.#watch = new PathWatch(() => hub.all().flatMap((ep) => [...ep.streams()]), {
      silentMs: opts.silentMs,
      onSilent: (stream, ms) => {
        const now = Date.now()
        // streams that never became a connection (a half-open UDX handshake) leave no close to clear their entry
        for (const [k, v] of this.#silent) if (now - v.at > 60_000) this.#silent.delete(k)
        this.#silent.set(`${stream.remoteHost}:${stream.remotePort}`, {
          why: `no packet for ${Math.round(ms)} ms`,
          at: now,
        })
      },
    })
    this.#tcpWatch = new TcpPathWatch(
      () => libp2p.getConnections(),
      (conn, why) => {
        const key = punchedKey(conn)
        if (key !== undefined) this.#silent.set(key, { why, at: Date.now() })
      },
    )
  }

  /** The STUN servers known so far (the responder side reads them when a peer's offer arrives). */
  stunServers(): Endpoint[] {
    const out: Endpoint[] = []
    for (const e of this.#stun.values()) if (!out.some((o) => sameEndpoint(o, e))) out.push(e)
    return out
  }

  /** Options whose `stunServers` is read live (a getter: never spread this object, that would freeze it). */
  #pathOptions<T extends object>(extra: T = {} as T): DirectPathOptions & T {
    const self = this
    return Object.assign(
      {
        hub: this.hub,
        get stunServers() {
          return self.stunServers()
        },
        timeoutMs: this.#opts.timeoutMs ?? 15_000,
        tcp: this.#opts.tcp !== false,
        log: this.#log,
      },
      extra,
    )
  }

  async start(): Promise<void> {
    await handleDirectPath(
      this.#libp2p,
      this.#pathOptions({
        ...(this.#opts.admit === undefined ? {} : { admit: this.#opts.admit }),
        onResult: (r: DirectPathResult | Error) => {
          if (r instanceof Error) {
            this.#log('debug', `direct path asked by a peer: ${r.message}`)
            return
          }
          const peer = r.connection.remotePeer
          this.#record(peer, { state: 'direct', plan: r.plan, ms: Math.round(r.ms), lost: this.#lost(peer) })
          this.#closeOthers(r.connection)
        },
      }),
    )
    this.#libp2p.addEventListener('connection:open', this.#onOpen)
    this.#libp2p.addEventListener('connection:close', this.#onClose)
    this.#watch.start()
    this.#tcpWatch.start()
    // learn the relays' STUN responders early, so this node can answer a peer's punch at once; relays that did not
    // answer are asked again later
    const learnAll = (): void => void Promise.all(this.#opts.relays.map((r) => this.#learnStun(r)))
    learnAll()
    if (this.#opts.relays.length > 0) {
      this.#retry = setInterval(() => {
        if (this.#opts.relays.some((r) => !this.#stun.has(r))) learnAll()
      }, 30_000)
      this.#retry.unref()
    }
  }

  readonly #onOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    // the dialing side starts the upgrade, so two nodes never punch toward each other twice at once
    if (this.#stopped || !isRelayed(conn) || conn.direction !== 'outbound') return
    void this.upgrade(conn.remotePeer)
  }

  /**
   * A direct connection closed. When a relayed one to the peer stays open and no other direct one does, the direct path
   * is lost: new streams take the relay, and the side that dialed the relayed connection punches again.
   */
  readonly #onClose = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    const key = conn.remotePeer.toString()
    const remote = punchedKey(conn)
    const silent = remote === undefined ? undefined : this.#silent.get(remote)?.why
    if (remote !== undefined) this.#silent.delete(remote)
    if (this.#stopped) return
    const open = this.#libp2p.getConnections(conn.remotePeer).filter((c) => c.status === 'open')
    if (open.length === 0) {
      // the peer is gone: nothing to upgrade or re-punch until it is reached again
      this.#cancelRepunch(key)
      this.#status.delete(key)
      return
    }
    if (!isPunched(conn) || open.some((c) => !isRelayed(c))) return
    const lost = (this.#lost(conn.remotePeer) ?? 0) + 1
    const why = `direct path lost (${silent ?? 'the connection closed'})`
    this.#record(conn.remotePeer, { state: 'relayed', reason: `${why}; new streams use the relay`, lost })
    this.#log('info', `${why} to ${key}; new streams use the relay`)
    if (open.some((c) => isRelayed(c) && c.direction === 'outbound')) this.#scheduleRepunch(conn.remotePeer, 1)
  }

  #scheduleRepunch(peer: PeerId, attempt: number): void {
    const key = peer.toString()
    this.#cancelRepunch(key)
    const run = (): void => {
      this.#repunch.delete(key)
      if (!this.#stopped) void this.upgrade(peer, attempt)
    }
    if (attempt === 1) {
      run()
      return
    }
    const t = setTimeout(run, repunchDelay(attempt))
    t.unref()
    this.#repunch.set(key, t)
  }

  #cancelRepunch(key: string): void {
    clearTimeout(this.#repunch.get(key))
    this.#repunch.delete(key)
  }

  /** How many direct paths to `peer` were lost so far (kept across re-punches). */
  #lost(peer: PeerId): number | undefined {
    return this.#status.get(peer.toString())?.lost
  }

  /** After a (re-)punch: older direct connections to the peer (a dead path the watch has not closed yet) go. */
  #closeOthers(keep: Connection): void {
    for (const c of this.#libp2p.getConnections(keep.remotePeer)) {
      if (c !== keep && c.status === 'open' && isPunched(c))
        void c.close().catch(() => c.abort(new Error('superseded')))
    }
  }

  /**
   * Upgrades the relayed connection to `peer`, unless a direct one exists or an upgrade already runs. `attempt` counts
   * re-punches after a lost direct path; a failed one schedules the next, up to {@link REPUNCH_ATTEMPTS}.
   */
  upgrade(peer: PeerId, attempt?: number, retry = 0): Promise<void> {
    const key = peer.toString()
    const running = this.#running.get(key)
    if (running !== undefined) return running
    const p = this.#upgrade(peer, attempt, retry).finally(() => this.#running.delete(key))
    this.#running.set(key, p)
    return p
  }

  async #upgrade(peer: PeerId, attempt: number | undefined, retry: number): Promise<void> {
    const conns = this.#libp2p.getConnections(peer).filter((c) => c.status === 'open')
    const via = conns.find(isRelayed)
    if (via === undefined || conns.some((c) => !isRelayed(c))) return
    const lost = this.#lost(peer)
    const again = attempt === undefined ? (retry === 0 ? {} : { retry }) : { attempt, lost }
    this.#record(peer, { state: 'upgrading', ...again })
    const relay = relayOf(via)
    if (relay !== undefined) await this.#learnStun(relay)
    if (this.stunServers().length === 0) {
      this.#record(peer, { state: 'relayed', reason: 'no STUN server: the relays answer no STUN requests', ...again })
      return
    }
    try {
      // a re-punch follows a path that worked: short bounds, so that retries come quickly
      const bounds = attempt === undefined ? {} : { timeoutMs: 10_000, punchTimeoutMs: 5_000 }
      const r = await upgradeToDirect(this.#libp2p, via, this.#pathOptions(bounds))
      this.#record(peer, { state: 'direct', plan: r.plan, ms: Math.round(r.ms), ...again })
      const what = attempt === undefined ? 'direct path' : `direct path again (re-punch ${attempt})`
      this.#log('info', `${what} to ${peer} (${r.plan}) in ${Math.round(r.ms)} ms: ${r.connection.remoteAddr}`)
    } catch (err) {
      const e = toWarrenError(err)
      if (attempt === undefined) {
        this.#firstFailed(peer, retry, e)
        return
      }
      if (!this.#libp2p.getConnections(peer).some((c) => c.status === 'open' && isRelayed(c))) {
        this.#status.delete(peer.toString()) // the peer is gone meanwhile: nothing to retry
        return
      }
      const last = attempt >= REPUNCH_ATTEMPTS || this.#stopped || e.details?.refused === true
      const reason = `direct path lost; re-punch ${attempt} of ${REPUNCH_ATTEMPTS} failed: ${e.message}`
      const retryAt = last ? {} : { retryAt: Date.now() + repunchDelay(attempt + 1) }
      this.#record(peer, { state: 'relayed', reason, ...again, ...retryAt })
      this.#log('info', `${reason}${last ? '; staying on the relay' : ''}`)
      if (!last) this.#scheduleRepunch(peer, attempt + 1)
    }
  }

  /** A first upgrade (or its retry `retry`) failed: stay on the relay, and try again unless no punch can meet. */
  #firstFailed(peer: PeerId, retry: number, e: WarrenError): void {
    const nats = e.details?.nats as { local: string; remote: string } | undefined
    // both NATs map per destination, or the peer refuses this node's punch requests
    const hopeless = (nats?.local === 'hard' && nats.remote === 'hard') || e.details?.refused === true
    const relayed = this.#libp2p.getConnections(peer).some((c) => c.status === 'open' && isRelayed(c))
    const next = retry + 1
    const again = retry === 0 ? {} : { retry }
    if (hopeless || !relayed || next > FIRST_RETRIES || this.#stopped) {
      this.#record(peer, { state: 'relayed', reason: e.message, ...again })
      this.#log('info', `no direct path to ${peer}, staying on the relay: ${e.message}`)
      return
    }
    const delay = firstRetryDelay(next)
    this.#record(peer, { state: 'relayed', reason: e.message, ...again, retryAt: Date.now() + delay })
    this.#log('info', `no direct path to ${peer} yet (${e.message}); trying again in ${delay / 1000} s`)
    const key = peer.toString()
    this.#cancelRepunch(key)
    const t = setTimeout(() => {
      this.#repunch.delete(key)
      if (!this.#stopped) void this.upgrade(peer, undefined, next)
    }, delay)
    t.unref()
    this.#repunch.set(key, t)
  }

  /** Asks a relay for its STUN port; the host is the relay's IP address. Failures leave the relay out. */
  async #learnStun(relayAddr: string): Promise<void> {
    if (this.#stun.has(relayAddr) || this.#stopped) return
    try {
      const { id, addr } = parseRelayAddr(relayAddr)
      const host = addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
      if (host === undefined) return
      const signal = AbortSignal.timeout(5_000)
      await this.#libp2p.dial(multiaddr(relayAddr), { signal }) // the relay may not be in the peer store yet
      const info = await queryRelayInfo(this.#libp2p, id, { signal })
      if (info.stun !== null) this.#stun.set(relayAddr, { host, port: info.stun.port })
    } catch (err) {
      this.#log('debug', `no STUN port from relay ${relayAddr}: ${(err as Error).message}`)
    }
  }

  /** `warren netcheck` from the socket direct paths use, against every relay's STUN responder. */
  async netcheck(): Promise<NetcheckReport> {
    await Promise.all(this.#opts.relays.map((r) => this.#learnStun(r)))
    const primary = this.hub.primary()
    if (primary === undefined) {
      throw new WarrenError('ERR_NO_DIRECT_PATH', 'the node has no UDP socket for direct paths', {
        hint: 'Set traversal.udpListen in config.json (default /ip4/0.0.0.0/udp/0).',
      })
    }
    return netcheck(primary.packets, this.stunServers())
  }

  #record(peer: PeerId, s: Omit<DirectPathStatus, 'at'>): void {
    this.#status.set(peer.toString(), { ...s, at: Date.now() })
  }

  /** The latest upgrade outcome per peer (base58 id). */
  status(): Record<string, DirectPathStatus> {
    return Object.fromEntries(this.#status)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#retry)
    this.#watch.stop()
    this.#tcpWatch.stop()
    for (const key of [...this.#repunch.keys()]) this.#cancelRepunch(key)
    this.#libp2p.removeEventListener('connection:open', this.#onOpen)
    this.#libp2p.removeEventListener('connection:close', this.#onClose)
    await this.#libp2p.unhandle(PUNCH_PROTOCOL).catch(() => undefined)
    await Promise.allSettled([...this.#running.values()])
    await this.hub.closeAll()
  }
}
