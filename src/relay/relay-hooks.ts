/**
 * Warren's policy on top of js-libp2p's circuit relay v2 server, without patching node_modules:
 *
 * - reservations: the connection gater's `denyInboundRelayReservation` refuses (private relay, cap); the store's
 *   `reserve` is wrapped so that each new reservation gets the limit of its node (none for allowed nodes) before the
 *   answer is written. The server itself has one limit for every peer (`applyDefaultLimit`), hence the wrap.
 * - circuits: the gater's `denyOutboundRelayedConnection` applies the caps; `handleConnect` and `stopHop` are wrapped
 *   (with an AsyncLocalStorage context per circuit) to book each circuit, count its bytes and close bounded ones at
 *   their duration limit ({@link CircuitTracker}).
 * - only the data limit reaches libp2p: its server reads `limit.duration` as milliseconds but sends it to clients
 *   who read seconds (see docs/relay.md), so durations are Warren's own and told through `/warren/relay/1.0.0`.
 *
 * Every refusal is logged and remembered per node, so the refused node can ask for the reason.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { AbortOptions, Connection, ConnectionGater, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'
import type { WarrenLibp2p } from '../node/create.ts'
import { type CircuitSlot, CircuitTracker } from './circuits.ts'
import type { RelayPolicy } from './policy.ts'
import type { Refusal } from './relay-info.ts'

/** Circuit relay v2 status OK, as js-libp2p's protobuf code names it. */
const STATUS_OK = 'OK'
const MAX_REMEMBERED_REFUSALS = 4_096

interface StoredReservation {
  expiry: Date
  limit?: { data?: bigint; duration?: number }
}

/** The parts of @libp2p/circuit-relay-v2's server Warren hooks into (4.2.x). */
interface ServerInternals {
  reservationStore: {
    reserve(peer: PeerId, addr: Multiaddr, limit?: unknown): { status: string; expire?: number }
    get(peer: PeerId): StoredReservation | undefined
    reservations: { entries(): IterableIterator<[PeerId, StoredReservation]> }
  }
  handleConnect(opts: { connection: Connection; stream: { unwrap(): Stream } }, options: AbortOptions): Promise<void>
  stopHop(opts: { connection: Connection }, options: AbortOptions): Promise<Stream | undefined>
}

interface CircuitContext {
  slot?: CircuitSlot
  dst?: PeerId
  dstStream?: Stream
}

export interface ReservationInfo {
  node: string
  allowed: boolean
  /** ms since the epoch. */
  expiresAt: number
  /** null: unlimited. */
  limits: { dataBytes: number; durationSec: number } | null
}

export class RelayHooks {
  readonly circuits: CircuitTracker
  readonly refused = { reservations: 0, circuits: 0 }
  readonly #policy: RelayPolicy
  readonly #log: (level: 'info' | 'warn', message: string) => void
  readonly #context = new AsyncLocalStorage<CircuitContext>()
  readonly #lastRefusal = new Map<string, Refusal>()
  readonly #expires = new Map<string, number>()
  #server: ServerInternals | undefined

  constructor(policy: RelayPolicy, log: (level: 'info' | 'warn', message: string) => void) {
    this.#policy = policy
    this.#log = log
    this.circuits = new CircuitTracker({ log: (m) => log('info', m) })
  }

  /** The gater to pass to the node; it consults the policy once {@link install} ran. */
  readonly gater: ConnectionGater = {
    denyInboundRelayReservation: (peer) => {
      const id = peer.toString()
      const reason = this.#policy.reservationRefusal(id, { boundedHeld: this.#boundedHeld(id) })
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
    const server = libp2p.services.relay as unknown as Partial<ServerInternals> | undefined
    const store = server?.reservationStore
    if (
      server === undefined ||
      typeof store?.reserve !== 'function' ||
      typeof store.get !== 'function' ||
      typeof server.handleConnect !== 'function' ||
      typeof server.stopHop !== 'function'
    ) {
      throw new WarrenError('ERR_INTERNAL', 'the circuit relay server does not have the shape Warren hooks into', {
        hint: 'Warren supports @libp2p/circuit-relay-v2 4.2.x; reinstall the dependencies from package-lock.json.',
      })
    }
    const s = server as ServerInternals
    this.#server = s
    const reserve = store.reserve.bind(store)
    store.reserve = (peer, addr) => {
      const result = reserve(peer, addr)
      const stored = store.get(peer)
      if (result.status === STATUS_OK && stored !== undefined) {
        const limit = this.#policy.limitFor(peer.toString())
        // data only: libp2p would enforce a duration as milliseconds and send it as seconds
        if (limit === undefined) delete stored.limit
        else stored.limit = { data: BigInt(limit.dataBytes) }
        if (result.expire !== undefined) this.#expires.set(peer.toString(), result.expire * 1000)
      }
      return result
    }
    const handleConnect = s.handleConnect.bind(s)
    s.handleConnect = (opts, options) => {
      const ctx: CircuitContext = {}
      return this.#context.run(ctx, async () => {
        let relaying = false
        try {
          await handleConnect(opts, options)
          relaying = true
        } finally {
          // the source stream is unwrapped only now: the server still writes protobuf on it until it relays
          this.#settle(ctx, relaying ? opts.stream : undefined)
        }
      })
    }
    const stopHop = s.stopHop.bind(s)
    s.stopHop = async (opts, options) => {
      const stream = await stopHop(opts, options)
      const ctx = this.#context.getStore()
      if (ctx !== undefined && stream !== undefined) {
        ctx.dst = opts.connection.remotePeer
        ctx.dstStream = stream
      }
      return stream
    }
  }

  #settle(ctx: CircuitContext, hop: { unwrap(): Stream } | undefined): void {
    if (ctx.slot === undefined) return
    const src = hop?.unwrap()
    if (src === undefined || ctx.dst === undefined || ctx.dstStream === undefined || src.status !== 'open') {
      ctx.slot.release()
      return
    }
    // the circuit has the limits of the reservation it goes to
    const bounded = this.#server?.reservationStore.get(ctx.dst)?.limit !== undefined
    const limit = bounded ? this.#policy.limitFor(ctx.dst.toString()) : undefined
    ctx.slot.commit(src, ctx.dstStream, limit?.durationSec)
  }

  #boundedHeld(except: string): number {
    let n = 0
    for (const [id] of this.#server?.reservationStore.reservations.entries() ?? []) {
      const s = id.toString()
      if (s !== except && !this.#policy.isAllowed(s)) n++
    }
    return n
  }

  #refuse(peer: string, refusal: Refusal, what: string): void {
    if (refusal.kind === 'reservation') this.refused.reservations++
    else this.refused.circuits++
    this.#log('warn', `refused ${what}: ${refusal.reason}`)
    this.#lastRefusal.delete(peer)
    this.#lastRefusal.set(peer, refusal)
    if (this.#lastRefusal.size > MAX_REMEMBERED_REFUSALS) {
      const oldest = this.#lastRefusal.keys().next().value
      if (oldest !== undefined) this.#lastRefusal.delete(oldest)
    }
  }

  /**
   * Why a reservation of `peer` would be refused now, or undefined when it would be granted. With `asking`, the node
   * is about to reserve, so a refusal is logged and counted as if it had asked for the reservation itself.
   */
  wouldRefuseReservation(peer: string, asking: boolean): string | undefined {
    const reason = this.#policy.reservationRefusal(peer, { boundedHeld: this.#boundedHeld(peer) })
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
      const node = id.toString()
      const limit = r.limit === undefined ? undefined : this.#policy.limitFor(node)
      out.push({
        node,
        allowed: this.#policy.isAllowed(node),
        expiresAt: this.#expires.get(node) ?? r.expiry.getTime(),
        limits: limit ?? null,
      })
    }
    for (const node of this.#expires.keys()) if (!out.some((r) => r.node === node)) this.#expires.delete(node)
    return out
  }

  reservationOf(peer: string): ReservationInfo | undefined {
    return this.reservations().find((r) => r.node === peer)
  }

  close(): void {
    this.circuits.close('the relay is shutting down')
  }
}
