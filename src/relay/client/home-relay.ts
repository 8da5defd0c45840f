/**
 * The node side of relaying: keep a reservation on one home relay out of config `relays`, so that the node is
 * reachable at `<relay>/p2p/<relay id>/p2p-circuit` even behind a NAT.
 *
 * - choice: every relay is pinged and the one with the lowest round trip that grants a reservation becomes home;
 * - renewal: the reservation is renewed at half its lifetime with a RESERVE Warren sends itself (libp2p alone asks the
 *   relay only 5 min before expiry);
 * - standby: a second reservation on the next best relay, so peers reach the node through it at once when the home
 *   relay vanishes without a word (a dial tries every relay of the ticket in parallel); Warren renews it at half its
 *   lifetime too, and when the standby relay goes away (its connection closes) reserves one again after 1 s (doubling
 *   to 30 s while none grants one);
 * - verification: at each health check the home and the standby relay are asked whether they still hold this node's
 *   reservation (reservation-renewal.ts; for a Warren home relay the question is the health check, in place of the
 *   ping); one that lost it gets a new RESERVE at once;
 * - failover: when the connection to the home relay closes (also when relay-links.ts aborts it: a relay that went
 *   silent), or a health check fails, the node moves to the next best relay at once; with none left it retries
 *   with back-off (1 s … 30 s).
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

import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { toWarrenError, WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import type { CircuitLimit } from '../info.ts'
import { queryRelayInfo } from '../info.ts'
import { type RelayClientParts, relayClientParts } from './client-store.ts'
import { RelayAttempts } from './relay-attempts.ts'
import { type Candidate, type HomeRelayOptions, type HomeRelayStatus, parseRelayAddr } from './relay-entries.ts'
import { renewReservation, reservationHeld } from './reservation-renewal.ts'
import { StandbyRelay } from './standby-relay.ts'

export type { HomeRelayOptions, HomeRelayStatus, RelayEntry, RelayState } from './relay-entries.ts'
export { parseRelayAddr } from './relay-entries.ts'

const MAX_RETRY_MS = 30_000

export class HomeRelay {
  readonly #libp2p: WarrenLibp2p
  readonly #parts: RelayClientParts
  readonly #candidates: Candidate[]
  readonly #log: NonNullable<HomeRelayOptions['log']>
  readonly #checkMs: number
  readonly #attemptMs: number
  /** Measures relays and asks them for reservations (relay-attempts.ts). */
  readonly #attempts: RelayAttempts
  #home: Candidate | undefined
  /** This node's second reservation (standby-relay.ts). */
  readonly #standby: StandbyRelay
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
    this.#attempts = new RelayAttempts({
      libp2p,
      parts: this.#parts,
      log: this.#log,
      attemptMs: this.#attemptMs,
      tokens: opts.tokens,
    })
    const seen = new Set<string>()
    this.#candidates = []
    for (const text of relays) {
      const { id, addr } = parseRelayAddr(text)
      if (id.equals(libp2p.peerId) || seen.has(addr.toString())) continue
      seen.add(addr.toString())
      this.#candidates.push({ id, addr, entry: { id: id.toString(), addr: addr.toString(), state: 'standby' } })
    }
    this.#standby = new StandbyRelay({
      libp2p,
      candidates: this.#candidates,
      log: this.#log,
      attemptMs: this.#attemptMs,
      home: () => this.#home,
      stopped: () => this.#stopped,
      measure: (c) => this.#attempts.measure(c),
      obtain: (c) => this.#attempts.obtain(c),
      storedExpiry: (id) => this.#parts.store.getReservation(id)?.expire,
      stored: (id) => this.#parts.store.hasReservation(id),
    })
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
    const standby = this.#standby.current()
    if (standby !== undefined && evt.detail.remotePeer.equals(standby.id)) {
      if (!this.#libp2p.getConnections(standby.id).some((c) => c.status === 'open')) {
        this.#standby.drop(standby, 'its connection closed')
      }
    }
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
      this.#candidates.map(async (c) => ({ c, rtt: c === lost ? undefined : await this.#attempts.measure(c) })),
    )
    const order = measured
      .filter((m): m is { c: Candidate; rtt: number } => m.rtt !== undefined)
      .sort((a, b) => a.rtt - b.rtt)
    // none of the others answers: the lost relay may be fine and only its connection gone (a NAT that forgot its
    // mappings resets every connection at once), so it is asked again at once rather than after the back-off
    if (order.length === 0 && lost !== undefined && !this.#stopped) {
      const rtt = await this.#attempts.measure(lost)
      if (rtt !== undefined) order.push({ c: lost, rtt })
    }
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
        void this.#standby.reserve()
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

  async #reserve(c: Candidate): Promise<void> {
    const info = await this.#attempts.obtain(c)
    this.#standby.release(c)
    this.#home = c
    this.#since = Date.now()
    this.#limits = info === undefined ? undefined : info.limits
    c.entry.state = 'home'
    delete c.entry.error
    this.#scheduleRenewal()
  }

  /**
   * A relay that no longer holds this node's reservation although the connection stayed (a Warren relay says so at
   * the health check; reservation-renewal.ts) gets it again at once: the token first, if the node has one, then a
   * RESERVE.
   */
  async #reserveAgain(c: Candidate, role: 'home' | 'standby'): Promise<void> {
    if (this.#stopped) return
    this.#log('warn', `${role} relay ${c.id} no longer holds this node's reservation; reserving again`)
    try {
      // a relay that forgot this node also forgot the token it was admitted by: presented again first
      const token = this.#attempts.token(c.id.toString())
      if (token !== undefined) {
        await queryRelayInfo(this.#libp2p, c.id, {
          signal: AbortSignal.timeout(this.#attemptMs),
          intent: 'reserve',
          token,
        })
      }
      const { expiresAt } = await renewReservation(this.#libp2p, c.id, AbortSignal.timeout(this.#attemptMs))
      if (role === 'standby') this.#standby.renewed(c, expiresAt)
      if (role === 'home' && this.#home === c) {
        this.#expiresAt = expiresAt
        this.#renewAt(c, expiresAt)
      }
    } catch (err) {
      if (role === 'standby') this.#standby.drop(c, `reserving again failed: ${(err as Error).message}`)
      else this.#lose(`it lost this node's reservation and refused a new one: ${(err as Error).message}`)
    }
  }

  #scheduleRenewal(): void {
    const home = this.#home
    if (home === undefined) return
    const expire = this.#parts.store.getReservation(home.id)?.expire
    this.#expiresAt = expire === undefined ? undefined : Number(expire) * 1000
    this.#renewAt(home, this.#expiresAt)
  }

  /** Renews the home reservation at half the time left before `expiresAt` (ms since the epoch). */
  #renewAt(home: Candidate, expiresAt: number | undefined): void {
    const left = (expiresAt ?? Date.now() + 60_000) - Date.now()
    clearTimeout(this.#renewTimer)
    this.#renewTimer = setTimeout(() => void this.#renew(home), Math.max(1_000, left / 2))
    this.#renewTimer.unref()
  }

  async #renew(home: Candidate): Promise<void> {
    if (this.#home !== home || this.#stopped) return
    try {
      // RESERVE sent by Warren itself: libp2p's store would not ask the relay before the last 10 minutes
      const { expiresAt } = await renewReservation(this.#libp2p, home.id, AbortSignal.timeout(this.#attemptMs))
      if (this.#home !== home) return
      this.#expiresAt = expiresAt
      this.#log('debug', `renewed the reservation on relay ${home.id}`)
      this.#renewAt(home, expiresAt)
    } catch (err) {
      this.#lose(`renewing the reservation failed: ${(err as Error).message}`)
    }
  }

  /**
   * Health check: the home relay must answer (a Warren relay its `/warren/relay/1.0.0` question, which also says
   * whether it still holds the reservation; others a ping), and the standby relay is asked whether it holds its
   * reservation; without a home, try again.
   */
  async #check(): Promise<void> {
    const home = this.#home
    if (this.#stopped) return
    if (home === undefined) {
      if (this.#retryTimer === undefined) void this.#select()
      return
    }
    try {
      const signal = AbortSignal.timeout(this.#attemptMs)
      const held = await reservationHeld(this.#libp2p, home.id, signal)
      if (held === undefined) await this.#libp2p.services.ping.ping(home.id, { signal })
      if (!this.#parts.store.hasReservation(home.id)) this.#lose('the reservation is gone')
      else {
        if (held === false) await this.#reserveAgain(home, 'home')
        const standby = this.#standby.current()
        if (standby !== undefined) {
          // a standby that does not answer is left to its connection's close and to relay-links.ts
          const standbyHeld = await reservationHeld(
            this.#libp2p,
            standby.id,
            AbortSignal.timeout(this.#attemptMs),
          ).catch(() => undefined)
          if (standbyHeld === false) await this.#reserveAgain(standby, 'standby')
        }
        void this.#standby.reserve()
      }
    } catch (err) {
      this.#lose(`it did not answer its health check: ${(err as Error).message}`)
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
    this.#standby.stop()
    this.#libp2p.removeEventListener('connection:close', this.#onClose)
  }
}
