/**
 * Warren's policy on top of js-libp2p's circuit relay v2 server, without patching node_modules:
 *
 * - reservations: the connection gater's `denyInboundRelayReservation` refuses (private relay, caps in total and per
 *   IP address; `handleReserve` is wrapped so that the gater knows the address the request came from); the store's
 *   `reserve` is wrapped so that each new reservation gets the limit of its node (none for allowed nodes) before the
 *   answer is written. The server itself has one limit for every peer (`applyDefaultLimit`), hence the wrap.
 * - a node's reservation is released as soon as its last connection to the relay closes (libp2p would keep it for
 *   its whole TTL, although nobody can reach the node through it any more): a node that comes back reserves again.
 * - circuits: the gater's `denyOutboundRelayedConnection` applies the caps; `handleConnect` and `stopHop` are wrapped
 *   (with an AsyncLocalStorage context per circuit, circuit-hooks.ts) to book each circuit, count its bytes and close
 *   bounded ones at their duration limit ({@link CircuitTracker}). The server is handed stand-ins for the two streams
 *   (stand-in.ts) and Warren joins the real ones itself (splice.ts): the server's own pipe holds every byte a
 *   circuit's source sends until the circuit closes, and never pauses a stream.
 * - only the data limit reaches libp2p: its server reads `limit.duration` as milliseconds but sends it to clients
 *   who read seconds (see docs/relay.md), so durations are Warren's own and told through `/warren/relay/1.0.0`.
 *
 * Every refusal is remembered per node, so the refused node can ask for the reason, and logged at most once per
 * `logIntervalMs` per kind with a count of the others ({@link LogThrottle}): strangers can cause refusals at will.
 */

import { AsyncLocalStorage } from 'node:async_hooks'
import type { Connection, ConnectionGater, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LogThrottle } from '../../log-throttle.ts'
import { openPingStream } from '../../p2p/conn-ping.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import type { Refusal } from '../info.ts'
import { type CircuitContext, hookCircuits } from './circuit-hooks.ts'
import { CircuitTracker } from './circuits.ts'
import { type CircuitLimit, ipGroup, type RelayPolicy, type ReservationLoad } from './policy.ts'
import { ReservationTally } from './reservation-tally.ts'
import { reservationTimer } from './reservation-timer.ts'
import { ReservedConnections } from './reserved-over.ts'
import { type ServerInternals, type StoredReservation, serverInternals } from './server-internals.ts'

/** Circuit relay v2 statuses, as js-libp2p's protobuf code names them. */
const STATUS_OK = 'OK'
const STATUS_PERMISSION_DENIED = 'PERMISSION_DENIED'
const MAX_REMEMBERED_REFUSALS = 4_096
/** An older connection of a node that reserved over a new one must answer a ping this soon, ms. */
const STALE_PING_MS = 1_000

export interface ReservationInfo {
  node: string
  allowed: boolean
  /** How the node is allowed: on the allow list or by a token; null when it is not. */
  admission: 'list' | 'token' | null
  /** The address it counts against for `maxReservationsPerIp` (an IPv6 /64); null when uncapped. */
  ip: string | null
  /** ms since the epoch. */
  expiresAt: number
  /** null: unlimited. */
  limits: { dataBytes: number; durationSec: number } | null
  /**
   * What an allowed node declared it admits (`/warren/relay/admits/1.0.0`): circuits from those nodes to it are
   * unlimited, from others bounded; null when it declared nothing (every circuit to an allowed node is unlimited).
   */
  admits: { any: boolean; ids: number } | null
}

export interface RelayHooksOptions {
  /** Refusals of one kind are logged at most once per this many ms (default 10000). */
  logIntervalMs?: number
  /**
   * Whether connections from this address stand for many clients (a reverse proxy in front of the WebSocket
   * listener), so that `maxReservationsPerIp` does not apply to them.
   */
  proxied?: (remoteAddr: Multiaddr) => boolean
}

/**
 * Gives a held reservation its limit for circuits: data only (libp2p would enforce a duration as milliseconds and
 * send it as seconds), and none as `undefined` by assignment: a `delete` would turn the reservation into a
 * dictionary-mode object in V8, larger for as long as it is held.
 */
function setLimit(stored: StoredReservation, limit: CircuitLimit | undefined): void {
  stored.limit = limit === undefined ? undefined : { data: BigInt(limit.dataBytes) }
}
export class RelayHooks {
  readonly circuits: CircuitTracker
  readonly refused = { reservations: 0, circuits: 0 }
  /** Reservations released because their node's last connection to the relay closed. */
  released = 0
  readonly #policy: RelayPolicy
  readonly #info: (message: string) => void
  readonly #throttle: LogThrottle
  readonly #proxied: (remoteAddr: Multiaddr) => boolean
  readonly #context = new AsyncLocalStorage<CircuitContext>()
  /** The connection a reservation request came in on, while the server handles it. */
  readonly #reserving = new AsyncLocalStorage<Connection>()
  readonly #lastRefusal = new Map<string, Refusal>()
  readonly #expires = new Map<string, number>()
  /** The connection each node last reserved over: circuits to it go there, not to an older one that may be dead. */
  readonly #reservedOver = new ReservedConnections()
  /** The per-IP group of each reservation's address ({@link #groupOf}); null when uncapped. */
  readonly #groups = new WeakMap<Multiaddr, string | null>()
  /** The counts the caps are checked against, kept as the store's reservations come and go. */
  readonly #tally = new ReservationTally({
    isAllowed: (node) => this.#policy.isAllowed(node),
    epoch: () => this.#policy.epoch,
    groupOf: (addr) => this.#groupOf(addr),
  })
  /** Leave the bytes to js-libp2p's own pipe: only for bench/relay.ts, which compares the two. */
  readonly #libp2pPipe = process.env.WARREN_BENCH_LIBP2P_PIPE === '1'
  #server: ServerInternals | undefined
  #libp2p: WarrenLibp2p | undefined

  constructor(
    policy: RelayPolicy,
    log: (level: 'info' | 'warn', message: string) => void,
    opts: RelayHooksOptions = {},
  ) {
    this.#policy = policy
    this.#info = (m) => log('info', m)
    this.#throttle = new LogThrottle({ intervalMs: opts.logIntervalMs ?? 10_000, emit: (l) => log('warn', l) })
    this.#proxied = opts.proxied ?? (() => false)
    this.circuits = new CircuitTracker({ log: (m) => log('info', m) })
  }

  /** The gater to pass to the node; it consults the policy once {@link install} ran. */
  readonly gater: ConnectionGater = {
    denyInboundRelayReservation: (peer) => {
      const id = peer.toString()
      const conn = this.#reserving.getStore()
      const from = conn?.remotePeer.equals(peer) === true ? conn.remoteAddr : this.#addrOf(peer)
      const reason = this.#policy.reservationRefusal(id, this.#load(id, from))
      if (reason === undefined) return false
      this.#refuse(id, { kind: 'reservation', reason, at: Date.now() }, `a reservation for ${id}`)
      return true
    },
    denyOutboundRelayedConnection: (src, dst) => {
      const from = src.toString()
      const to = dst.toString()
      const reason = this.#policy.circuitRefusal(from, to, {
        total: this.circuits.total,
        perNode: (p) => this.circuits.perNode(p),
      })
      if (reason !== undefined) {
        this.#refuse(from, { kind: 'circuit', reason, at: Date.now() }, `a relayed connection ${from} → ${to}`)
        return true
      }
      const ctx = this.#context.getStore()
      if (ctx !== undefined && ctx.slot === undefined) ctx.slot = this.circuits.admit(from, to)
      return false
    },
  }

  /** Hooks into the node's circuit relay server; call right after the node started, before it serves anyone. */
  install(libp2p: WarrenLibp2p): void {
    const s = serverInternals(libp2p)
    const store = s.reservationStore
    this.#server = s
    this.#libp2p = libp2p
    this.#tallyStore(store.reservations)
    // a circuit's limits depend on who asks for it (policy.circuitLimit): the server reads the reservation once per
    // circuit, from within handleConnect, and relays with the limit of what it gets
    const get = store.get.bind(store)
    store.get = (peer) => {
      const stored = get(peer)
      const ctx = this.#context.getStore()
      if (stored === undefined || ctx === undefined) return stored
      const limit = this.#policy.circuitLimit(ctx.src, peer.toString())
      ctx.limit = limit
      const { limit: _, ...rest } = stored
      return limit === undefined ? rest : { ...rest, limit: { data: BigInt(limit.dataBytes) } }
    }
    const handleReserve = s.handleReserve.bind(s)
    s.handleReserve = (opts, options) => this.#reserving.run(opts.connection, () => handleReserve(opts, options))
    const reserve = store.reserve.bind(store)
    const ttlMs = (store as { reservationTtl?: number }).reservationTtl
    store.reserve = (peer, addr) => {
      const id = peer.toString()
      const existing = store.get(peer)
      if (existing !== undefined && ttlMs !== undefined) {
        // libp2p refreshes with signal.reset(), whose older timers still fire (reservation-timer.ts, UPSTREAM.md)
        existing.signal?.clear?.()
        existing.signal = reservationTimer(ttlMs, () => {
          if (store.get(peer) === existing) store.removeReservation(peer)
        })
      }
      if (store.get(peer) === undefined) {
        // checked again in the same tick as the insert: requests handled at the same time all passed the gater
        const reason = this.#policy.reservationRefusal(id, this.#load(id, addr))
        if (reason !== undefined) {
          this.#refuse(id, { kind: 'reservation', reason, at: Date.now() }, `a reservation for ${id}`)
          return { status: STATUS_PERMISSION_DENIED }
        }
      }
      const result = reserve(peer, addr)
      const stored = store.get(peer)
      if (result.status === STATUS_OK && stored !== undefined) {
        if (existing === undefined && ttlMs !== undefined) {
          // libp2p's timer (retimeable-signal) holds an Error with its stack trace per reservation; this one does not
          stored.signal?.clear?.()
          stored.signal = reservationTimer(ttlMs, () => {
            if (store.get(peer) === stored) store.removeReservation(peer)
          })
        }
        setLimit(stored, this.#policy.limitFor(id))
        if (result.expire !== undefined) this.#expires.set(id, result.expire * 1000)
        // the node may have gone while its request was handled: then 'peer:disconnect' has already passed
        const conn = this.#reserving.getStore()
        if (conn !== undefined) this.#reservedOver.reserved(id, conn)
        if (conn !== undefined) void this.#checkOthers(libp2p, peer, conn)
        if (conn?.status !== undefined && conn.status !== 'open' && libp2p.getConnections(peer).length === 0) {
          this.#release(peer)
        }
      }
      return result
    }
    libp2p.addEventListener('peer:disconnect', this.#onDisconnect)
    hookCircuits(s, { context: this.#context, reservedOver: this.#reservedOver, libp2pPipe: this.#libp2pPipe })
  }

  /**
   * A node that reserves over a new connection while an older one stays open has usually lost the older one without
   * a word (its NAT forgot the mapping): circuits to it would go over the dead one and hang. Each older connection
   * gets one ping; one that does not answer within {@link STALE_PING_MS} is aborted.
   */
  async #checkOthers(libp2p: WarrenLibp2p, peer: PeerId, keep: Connection): Promise<void> {
    const others = libp2p
      .getConnections(peer)
      .filter((c) => c !== keep && c.status === 'open' && c.limits === undefined)
    await Promise.all(
      others.map(async (c) => {
        const started = performance.now()
        try {
          const ping = await openPingStream(c, STALE_PING_MS)
          try {
            await ping.once(Math.max(1, STALE_PING_MS - (performance.now() - started)))
          } finally {
            void ping.close().catch(() => {})
          }
        } catch (err) {
          if (c.status !== 'open') return
          this.#info(
            `closing an older connection of node ${peer}: it reserved over a new one, and the old one did not answer a ping (${(err as Error).message})`,
          )
          c.abort(new Error(`node ${peer} reserved over a new connection; this one did not answer a ping`))
        }
      }),
    )
  }

  /** The address a reservation from `addr` counts against per IP; undefined when uncapped or unknown. */
  #groupOf(addr: Multiaddr | undefined): string | undefined {
    if (addr === undefined) return undefined
    // asked for every held reservation at each new one: parsed once per address
    const known = this.#groups.get(addr)
    if (known !== undefined) return known ?? undefined
    const ip = this.#proxied(addr)
      ? undefined
      : addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
    const group = ip === undefined ? undefined : ipGroup(ip)
    this.#groups.set(addr, group ?? null)
    return group
  }

  /** The remote address of an open connection of `peer`, if it has one. */
  #addrOf(peer: PeerId): Multiaddr | undefined {
    return this.#libp2p?.getConnections(peer).find((c) => c.status === 'open')?.remoteAddr
  }

  /** Reservations of non-allowed nodes other than `except`: in total, and from the same address as `from`. */
  #load(except: string, from: Multiaddr | undefined): ReservationLoad {
    return this.#tally.load(except, this.#groupOf(from))
  }

  /** Keeps {@link #tally} in step with the store's map of reservations: every way the server adds or drops one. */
  #tallyStore(reservations: ServerInternals['reservationStore']['reservations']): void {
    for (const [peer, r] of reservations.entries()) this.#tally.set(peer.toString(), r.addr)
    const set = reservations.set.bind(reservations)
    const del = reservations.delete.bind(reservations)
    const clear = reservations.clear.bind(reservations)
    reservations.set = (peer, r) => {
      const out = set(peer, r)
      this.#tally.set(peer.toString(), r.addr)
      return out
    }
    reservations.delete = (peer) => {
      const out = del(peer)
      this.#tally.delete(peer.toString())
      this.#expires.delete(peer.toString())
      return out
    }
    reservations.clear = () => {
      clear()
      this.#tally.clear()
      this.#expires.clear()
    }
  }

  readonly #onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.#policy.forget(evt.detail.toString())
    this.#reservedOver.forget(evt.detail.toString())
    if (this.#server?.reservationStore.get(evt.detail) !== undefined) this.#release(evt.detail)
  }

  /** Drops the reservation of a node that has no connection to the relay left. */
  #release(peer: PeerId): void {
    const store = this.#server?.reservationStore
    const stored = store?.get(peer)
    if (store === undefined || stored === undefined) return
    // its timer would otherwise fire at the old expiry and delete a reservation the node made since
    stored.signal?.clear?.()
    store.removeReservation(peer)
    this.#expires.delete(peer.toString())
    this.released++
  }

  #refuse(peer: string, refusal: Refusal, what: string): void {
    if (refusal.kind === 'reservation') this.refused.reservations++
    else this.refused.circuits++
    const counted = refusal.kind === 'reservation' ? 'reservations refused' : 'relayed connections refused'
    this.#throttle.log(refusal.kind, `refused ${what}: ${refusal.reason}`, counted)
    this.#lastRefusal.delete(peer)
    this.#lastRefusal.set(peer, refusal)
    if (this.#lastRefusal.size > MAX_REMEMBERED_REFUSALS) {
      const oldest = this.#lastRefusal.keys().next().value
      if (oldest !== undefined) this.#lastRefusal.delete(oldest)
    }
  }

  /**
   * Why a reservation of `peer`, asking from `from`, would be refused now, or undefined when it would be granted. With
   * `asking`, the node is about to reserve, so a refusal is logged and counted as if it had asked for it itself.
   */
  wouldRefuseReservation(peer: string, from: Multiaddr | undefined, asking: boolean): string | undefined {
    const reason = this.#policy.reservationRefusal(peer, this.#load(peer, from))
    if (reason !== undefined && asking) {
      this.#refuse(peer, { kind: 'reservation', reason, at: Date.now() }, `a reservation for ${peer}`)
    }
    return reason
  }

  lastRefusal(peer: string): Refusal | undefined {
    return this.#lastRefusal.get(peer)
  }

  /** Reservations held now. */
  reservations(): ReservationInfo[] {
    const out: ReservationInfo[] = []
    for (const [id, r] of this.#server?.reservationStore.reservations.entries() ?? []) {
      out.push(this.#infoOf(id.toString(), r))
    }
    return out
  }

  #infoOf(node: string, r: StoredReservation): ReservationInfo {
    const allowed = this.#policy.isAllowed(node)
    const limit = r.limit === undefined ? undefined : this.#policy.limitFor(node)
    return {
      node,
      allowed,
      admission: this.#policy.admission(node),
      ip: allowed ? null : (this.#groupOf(r.addr) ?? null),
      expiresAt: this.#expires.get(node) ?? r.expiry.getTime(),
      limits: limit ?? null,
      admits: this.#policy.declarationOf(node) ?? null,
    }
  }

  /**
   * Gives held reservations the limits the policy sets now (after a reload, or a node admitted by a token): circuits
   * opened from now on take them; circuits already open keep theirs. `peer` limits it to one node's reservation.
   */
  applyLimits(peer?: PeerId): void {
    if (peer !== undefined) {
      const node = peer.toString()
      // a node admitted by a token: its reservation stops counting against the caps
      this.#tally.refresh(node)
      const stored = this.#server?.reservationStore.reservations.get(peer)
      if (stored !== undefined) setLimit(stored, this.#policy.limitFor(node))
      return
    }
    for (const [id, stored] of this.#server?.reservationStore.reservations.entries() ?? []) {
      setLimit(stored, this.#policy.limitFor(id.toString()))
    }
  }

  /** The reservation `peer` holds now, if any. */
  reservationOf(peer: PeerId): ReservationInfo | undefined {
    const stored = this.#server?.reservationStore.reservations.get(peer)
    return stored === undefined ? undefined : this.#infoOf(peer.toString(), stored)
  }

  close(): void {
    this.#libp2p?.removeEventListener('peer:disconnect', this.#onDisconnect)
    this.#throttle.close()
    this.circuits.close('the relay is shutting down')
  }
}
