/**
 * Direct paths for a node: whenever this node dials a peer and gets a relayed connection, try to upgrade it to a
 * direct UDX connection in the background (`/warren/punch/1.0.0`, see direct-path.ts), and answer the peer's own
 * attempts. The relayed connection stays open as the fallback; new streams move to the direct one as soon as it
 * exists (src/node/path.ts prefers direct connections), streams already open on the relay finish there.
 *
 * STUN servers are the relays' STUN responders: the host of each relay address in config `relays`, and of the relay
 * a relayed connection runs through, with the port the relay announces on `/warren/relay/1.0.0`.
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
import { toWarrenError, WarrenError } from '../errors.ts'
import type { WarrenLibp2p } from '../node/create.ts'
import { isRelayed } from '../node/path.ts'
import { parseRelayAddr } from '../relay/home-relay.ts'
import { queryRelayInfo } from '../relay/relay-info.ts'
import { type DirectPathOptions, type DirectPathResult, handleDirectPath, upgradeToDirect } from './direct-path.ts'
import { type NetcheckReport, netcheck } from './netcheck.ts'
import type { Endpoint } from './packet-socket.ts'
import { PUNCH_PROTOCOL } from './punch-messages.ts'
import type { UdxHub } from './udx-transport.ts'

export interface DirectPathStatus {
  state: 'upgrading' | 'direct' | 'relayed'
  /** How the NATs were punched, once direct. */
  plan?: string
  /** Time from the start of the upgrade to the direct connection, ms. */
  ms?: number
  /** Why the path stays relayed. */
  reason?: string
  at: number
}

export interface DirectPathsOptions {
  /** Config `relays` (`…/p2p/<relay id>`): their STUN responders tell this node its public UDP mapping. */
  relays: readonly string[]
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void
  /** Bound on one upgrade, ms (default 15000). */
  timeoutMs?: number
}

/** The relay a relayed connection runs through: `/…/p2p/<relay>/p2p-circuit/…` → the part before `/p2p-circuit`. */
function relayOf(conn: Connection): string | undefined {
  const addr = conn.remoteAddr.toString()
  const i = addr.indexOf('/p2p-circuit')
  return i > 0 ? addr.slice(0, i) : undefined
}

const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.host === b.host && a.port === b.port

export class DirectPaths {
  readonly hub: UdxHub
  readonly #libp2p: WarrenLibp2p
  readonly #opts: DirectPathsOptions
  readonly #log: NonNullable<DirectPathsOptions['log']>
  readonly #status = new Map<string, DirectPathStatus>()
  readonly #running = new Map<string, Promise<void>>()
  /** STUN endpoints learned per relay address. */
  readonly #stun = new Map<string, Endpoint>()
  #stopped = false
  #retry: NodeJS.Timeout | undefined

  constructor(libp2p: WarrenLibp2p, hub: UdxHub, opts: DirectPathsOptions) {
    this.#libp2p = libp2p
    this.hub = hub
    this.#opts = opts
    this.#log = opts.log ?? (() => {})
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
      },
      extra,
    )
  }

  async start(): Promise<void> {
    await handleDirectPath(
      this.#libp2p,
      this.#pathOptions({
        onResult: (r: DirectPathResult | Error) => {
          if (r instanceof Error) this.#log('debug', `direct path asked by a peer: ${r.message}`)
          else this.#record(r.connection.remotePeer, { state: 'direct', plan: r.plan, ms: Math.round(r.ms) })
        },
      }),
    )
    this.#libp2p.addEventListener('connection:open', this.#onOpen)
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

  /** Upgrades the relayed connection to `peer`, unless a direct one exists or an upgrade already runs. */
  upgrade(peer: PeerId): Promise<void> {
    const key = peer.toString()
    const running = this.#running.get(key)
    if (running !== undefined) return running
    const p = this.#upgrade(peer).finally(() => this.#running.delete(key))
    this.#running.set(key, p)
    return p
  }

  async #upgrade(peer: PeerId): Promise<void> {
    const conns = this.#libp2p.getConnections(peer).filter((c) => c.status === 'open')
    const via = conns.find(isRelayed)
    if (via === undefined || conns.some((c) => !isRelayed(c))) return
    this.#record(peer, { state: 'upgrading' })
    const relay = relayOf(via)
    if (relay !== undefined) await this.#learnStun(relay)
    if (this.stunServers().length === 0) {
      this.#record(peer, { state: 'relayed', reason: 'no STUN server: the relays answer no STUN requests' })
      return
    }
    try {
      const r = await upgradeToDirect(this.#libp2p, via, this.#pathOptions())
      this.#record(peer, { state: 'direct', plan: r.plan, ms: Math.round(r.ms) })
      this.#log('info', `direct path to ${peer} (${r.plan}) in ${Math.round(r.ms)} ms: ${r.connection.remoteAddr}`)
    } catch (err) {
      const e = toWarrenError(err)
      this.#record(peer, { state: 'relayed', reason: e.message })
      this.#log('info', `no direct path to ${peer}, staying on the relay: ${e.message}`)
    }
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
    this.#libp2p.removeEventListener('connection:open', this.#onOpen)
    await this.#libp2p.unhandle(PUNCH_PROTOCOL).catch(() => undefined)
    await Promise.allSettled([...this.#running.values()])
    await this.hub.closeAll()
  }
}
