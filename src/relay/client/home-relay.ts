/**
 * The node side of relaying: keep a reservation on one home relay out of config `relays`, so that the node is
 * reachable at `<relay>/p2p/<relay id>/p2p-circuit` even behind a NAT.
 *
 * - choice: every relay is pinged and the one with the lowest round trip that grants a reservation becomes home;
 * - renewal: the reservation is renewed at half its lifetime (libp2p alone renews only 5 min before expiry);
 * - failover: when the connection to the home relay closes, or a health-check ping fails, the node moves to the next
 *   best relay at once; with none left it retries with back-off (1 s … 30 s).
 *
 * Tickets carry the circuit addresses of every configured relay, home first, so a ticket keeps working after a move.
 *
 * @example
 * ```ts
 * const home = new HomeRelay(libp2p, config.relays, { log })
 * await home.start()                 // resolves once a home is chosen (or every relay failed; it keeps trying)
 * home.status().home                 // '12D3KooW…' (relay id)
 * ```
 */

import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { toWarrenError, WarrenError, type WarrenErrorJSON } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import type { CircuitLimit } from '../info.ts'
import { queryRelayInfo } from '../info.ts'
import { relayStatusOf, reservationRefused } from '../status.ts'
import { type RelayClientParts, relayClientParts } from './client-store.ts'

export type RelayState = 'home' | 'standby' | 'unreachable' | 'refused'

export interface RelayEntry {
  id: string
  addr: string
  state: RelayState
  /** Round trip of the latest measurement, ms. */
  rttMs?: number
  /** Why the relay is unreachable or refused. */
  error?: WarrenErrorJSON
}

export interface HomeRelayStatus {
  /** Relay id of the home relay; null while none holds a reservation for this node. */
  home: string | null
  /** When the node moved to its home relay, ms since the epoch. */
  since?: number
  /** When the reservation expires unless renewed, ms since the epoch. */
  expiresAt?: number
  /** Limits the home relay puts on connections to this node; null when unlimited. */
  limits?: CircuitLimit | null
  relays: RelayEntry[]
}

export interface HomeRelayOptions {
  log?: Logger
  /** Ping of the home relay to catch a dead relay whose connection did not close, ms (default 10000). */
  checkIntervalMs?: number
  /** Time for one relay to answer a ping or grant a reservation, ms (default 4000). */
  attemptTimeoutMs?: number
}

interface Candidate {
  id: PeerId
  addr: Multiaddr
  entry: RelayEntry
}

const MAX_RETRY_MS = 30_000

/** Parses `relays` entries; each must name its relay with /p2p/<id>. */
export function parseRelayAddr(text: string): { id: PeerId; addr: Multiaddr } {
  const addr = multiaddr(text)
  const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
  if (id === undefined || text.includes('/p2p-circuit')) {
    throw new WarrenError('ERR_CONFIG_INVALID', `relay address ${text} does not end with /p2p/<relay id>`, {
      hint: 'Copy the relay address with its id from `warren relay status` on the relay, e.g. /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW…',
    })
  }
  return { id: peerIdFromString(id), addr }
}

export class HomeRelay {
  readonly #libp2p: WarrenLibp2p
  readonly #parts: RelayClientParts
  readonly #candidates: Candidate[]
  readonly #log: NonNullable<HomeRelayOptions['log']>
  readonly #checkMs: number
  readonly #attemptMs: number
  /** Relays with a circuit listener that received addresses once (re-reserving there needs no new listener). */
  readonly #listening = new Set<string>()
  #home: Candidate | undefined
  #since = 0
  #expiresAt: number | undefined
  #limits: CircuitLimit | null | undefined
  #selecting: Promise<void> | undefined
  #retryMs = 1_000
  #retryTimer: NodeJS.Timeout | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #checkTimer: NodeJS.Timeout | undefined
  #stopped = false
  #waiters: Array<() => void> = []

  constructor(libp2p: WarrenLibp2p, relays: readonly string[], opts: HomeRelayOptions = {}) {
    this.#libp2p = libp2p
    this.#parts = relayClientParts(libp2p)
    this.#log = opts.log ?? (() => {})
    this.#checkMs = opts.checkIntervalMs ?? 10_000
    this.#attemptMs = opts.attemptTimeoutMs ?? 4_000
    const seen = new Set<string>()
    this.#candidates = []
    for (const text of relays) {
      const { id, addr } = parseRelayAddr(text)
      if (id.equals(libp2p.peerId) || seen.has(addr.toString())) continue
      seen.add(addr.toString())
      this.#candidates.push({ id, addr, entry: { id: id.toString(), addr: addr.toString(), state: 'standby' } })
    }
  }

  /** Chooses the first home relay; resolves when one holds a reservation or every relay failed once. */
  async start(): Promise<void> {
    if (this.#candidates.length === 0) return
    this.#libp2p.addEventListener('connection:close', this.#onClose)
    this.#checkTimer = setInterval(() => void this.#check(), this.#checkMs)
    this.#checkTimer.unref()
    await this.#select()
  }

  readonly #onClose = (evt: CustomEvent<Connection>): void => {
    const home = this.#home
    if (home === undefined || !evt.detail.remotePeer.equals(home.id)) return
    if (this.#libp2p.getConnections(home.id).some((c) => c.status === 'open')) return
    this.#lose('its connection closed')
  }

  #lose(why: string): void {
    const home = this.#home
    if (home === undefined || this.#stopped) return
    this.#log('warn', `home relay ${home.id} lost (${why}); moving to another relay`)
    home.entry.state = 'unreachable'
    home.entry.error = new WarrenError('ERR_RELAY_UNREACHABLE', `relay ${home.id} was lost: ${why}`).toJSON()
    this.#home = undefined
    this.#expiresAt = undefined
    clearTimeout(this.#renewTimer)
    void this.#select(home)
  }

  /** Measures every relay and reserves on the fastest one that grants a reservation. Runs one at a time. */
  #select(lost?: Candidate): Promise<void> {
    this.#selecting ??= this.#doSelect(lost).finally(() => {
      this.#selecting = undefined
    })
    return this.#selecting
  }

  async #doSelect(lost?: Candidate): Promise<void> {
    if (this.#stopped || this.#home !== undefined) return
    const started = Date.now()
    const measured = await Promise.all(
      this.#candidates.map(async (c) => ({ c, rtt: c === lost ? undefined : await this.#measure(c) })),
    )
    const order = measured
      .filter((m): m is { c: Candidate; rtt: number } => m.rtt !== undefined)
      .sort((a, b) => a.rtt - b.rtt)
    for (const { c } of order) {
      if (this.#stopped) return
      try {
        await this.#reserve(c)
        this.#retryMs = 1_000
        this.#log(
          'info',
          `home relay ${c.id} (rtt ${c.entry.rttMs?.toFixed(1)} ms), chosen in ${Date.now() - started} ms`,
        )
        for (const w of this.#waiters.splice(0)) w()
        return
      } catch (err) {
        const e = toWarrenError(err)
        c.entry.state = e.code === 'ERR_RELAY_REFUSED' ? 'refused' : 'unreachable'
        c.entry.error = e.toJSON()
        this.#log('warn', `${e.message}${e.hint === undefined ? '' : ` (${e.hint})`}`)
      }
    }
    if (this.#stopped) return
    const err = new WarrenError(
      'ERR_RELAY_UNREACHABLE',
      `no relay in \`relays\` holds a reservation for this node: ${this.#candidates.map((c) => `${c.id}: ${c.entry.error?.message ?? 'unreachable'}`).join('; ')}`,
    )
    this.#log('warn', `${err.message}; trying again in ${this.#retryMs / 1000} s`)
    clearTimeout(this.#retryTimer)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      void this.#select()
    }, this.#retryMs)
    this.#retryTimer.unref()
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS)
  }

  /** Dials and pings a relay; undefined (with the entry marked) when it does not answer in time. */
  async #measure(c: Candidate): Promise<number | undefined> {
    try {
      const signal = AbortSignal.timeout(this.#attemptMs)
      await this.#libp2p.dial(c.addr, { signal })
      const rtt = await this.#libp2p.services.ping.ping(c.id, { signal })
      c.entry.rttMs = rtt
      if (c.entry.state !== 'home') c.entry.state = 'standby'
      delete c.entry.error
      return rtt
    } catch (err) {
      c.entry.state = 'unreachable'
      c.entry.error = new WarrenError(
        'ERR_RELAY_UNREACHABLE',
        `relay ${c.id} at ${c.addr} did not answer: ${(err as Error).message}`,
        {
          hint: 'Check that the relay runs (`warren relay status` on its machine) and that this address reaches it.',
        },
      ).toJSON()
      return undefined
    }
  }

  async #reserve(c: Candidate): Promise<void> {
    const signal = AbortSignal.timeout(this.#attemptMs)
    // a Warren relay says up front whether it grants a reservation (and why not), so a refused attempt leaves no
    // half-made circuit listener behind in libp2p; other relays are simply asked for one
    const info = await queryRelayInfo(this.#libp2p, c.id, { signal, intent: 'reserve' }).catch(() => undefined)
    if (info?.wouldRefuse != null) throw reservationRefused(c.id.toString(), undefined, info.wouldRefuse)
    const key = c.id.toString()
    try {
      if (this.#listening.has(key)) await this.#parts.store.addRelay(c.id, 'configured')
      else await this.#parts.listen([c.addr.encapsulate('/p2p-circuit')])
    } catch (err) {
      const status = relayStatusOf(err)
      if (status === undefined) {
        throw new WarrenError('ERR_RELAY_UNREACHABLE', `no reservation on relay ${c.id}: ${(err as Error).message}`, {
          cause: err,
        })
      }
      const why = await queryRelayInfo(this.#libp2p, c.id).catch(() => undefined)
      throw reservationRefused(key, status, why?.refusal?.kind === 'reservation' ? why.refusal.reason : undefined)
    }
    if (!this.#parts.store.hasReservation(c.id)) {
      throw new WarrenError('ERR_RELAY_UNREACHABLE', `relay ${c.id} granted no reservation`)
    }
    this.#listening.add(key)
    this.#home = c
    this.#since = Date.now()
    this.#limits = info === undefined ? undefined : info.limits
    c.entry.state = 'home'
    delete c.entry.error
    this.#scheduleRenewal()
  }

  #scheduleRenewal(): void {
    const home = this.#home
    if (home === undefined) return
    const expire = this.#parts.store.getReservation(home.id)?.expire
    this.#expiresAt = expire === undefined ? undefined : Number(expire) * 1000
    const left = (this.#expiresAt ?? Date.now() + 60_000) - Date.now()
    clearTimeout(this.#renewTimer)
    this.#renewTimer = setTimeout(() => void this.#renew(home), Math.max(1_000, left / 2))
    this.#renewTimer.unref()
  }

  async #renew(home: Candidate): Promise<void> {
    if (this.#home !== home || this.#stopped) return
    try {
      await this.#parts.store.addRelay(home.id, 'configured')
      this.#log('debug', `renewed the reservation on relay ${home.id}`)
      this.#scheduleRenewal()
    } catch (err) {
      this.#lose(`renewing the reservation failed: ${(err as Error).message}`)
    }
  }

  /** Health check: the home relay must answer a ping; without a home, try again. */
  async #check(): Promise<void> {
    const home = this.#home
    if (this.#stopped) return
    if (home === undefined) {
      if (this.#retryTimer === undefined) void this.#select()
      return
    }
    try {
      await this.#libp2p.services.ping.ping(home.id, { signal: AbortSignal.timeout(this.#attemptMs) })
      if (!this.#parts.store.hasReservation(home.id)) this.#lose('the reservation is gone')
    } catch (err) {
      this.#lose(`it did not answer a ping: ${(err as Error).message}`)
      await this.#libp2p.hangUp(home.id).catch(() => {})
    }
  }

  /** Circuit addresses of every configured relay for tickets (home first), without this node's /p2p. */
  ticketAddrs(): Multiaddr[] {
    const ordered =
      this.#home === undefined ? this.#candidates : [this.#home, ...this.#candidates.filter((c) => c !== this.#home)]
    return ordered.map((c) => c.addr.encapsulate('/p2p-circuit'))
  }

  status(): HomeRelayStatus {
    const out: HomeRelayStatus = {
      home: this.#home?.id.toString() ?? null,
      relays: this.#candidates.map((c) => ({ ...c.entry })),
    }
    if (this.#home !== undefined) {
      out.since = this.#since
      if (this.#expiresAt !== undefined) out.expiresAt = this.#expiresAt
      if (this.#limits !== undefined) out.limits = this.#limits
    }
    return out
  }

  /** Resolves once a home relay holds a reservation (at once when one does), or rejects after `timeoutMs`. */
  waitForHome(timeoutMs: number): Promise<string> {
    if (this.#home !== undefined) return Promise.resolve(this.#home.id.toString())
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done)
        reject(
          new WarrenError('ERR_RELAY_UNREACHABLE', `no home relay within ${timeoutMs} ms`, {
            details: { relays: this.status().relays },
          }),
        )
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve(this.#home!.id.toString())
      }
      this.#waiters.push(done)
    })
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#retryTimer)
    clearTimeout(this.#renewTimer)
    clearInterval(this.#checkTimer)
    this.#libp2p.removeEventListener('connection:close', this.#onClose)
  }
}
