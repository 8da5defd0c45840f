/**
 * The standby reservation of a node with two or more relays (the home relay is home-relay.ts): a second reservation on
 * the best other relay that grants one, so that peers reach the node through it at once when the home relay silently
 * disappears (their dials try every relay of the ticket in parallel), before the node has even noticed.
 *
 * Warren keeps it itself rather than leaving it to libp2p's reservation store (which refreshes only in the last
 * minutes of a reservation and never asks whether the relay still holds it):
 * - renewal: a RESERVE at half its lifetime (reservation-renewal.ts);
 * - loss: when the standby relay goes away (its connection closes, a renewal fails), a new standby is reserved after
 *   1 s, doubling to 30 s while no relay grants one; relays without an open connection are measured again first, so a
 *   restarted relay is asked over a fresh connection;
 * - verification: home-relay.ts asks the relay at each health check whether it still holds the reservation and calls
 *   {@link StandbyRelay.renewed} or {@link StandbyRelay.drop}.
 *
 * @example
 * ```ts
 * const standby = new StandbyRelay(host)
 * await standby.reserve()     // after a home was chosen
 * standby.current()?.id       // the standby relay, if any
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import type { Candidate } from './relay-entries.ts'
import { relayConnection, renewReservation } from './reservation-renewal.ts'

const MAX_RETRY_MS = 30_000

/** What the standby needs from the home relay's side. */
export interface StandbyHost {
  libp2p: WarrenLibp2p
  candidates: readonly Candidate[]
  log: Logger
  attemptMs: number
  home(): Candidate | undefined
  stopped(): boolean
  /** Dials and pings a relay; its round trip, or undefined (the entry marked) when it does not answer. */
  measure(c: Candidate): Promise<number | undefined>
  /** Asks for a reservation on `c`; throws why not. */
  obtain(c: Candidate): Promise<unknown>
  /** The reservation's expiry in libp2p's store, seconds since the epoch. */
  storedExpiry(id: PeerId): bigint | undefined
  /** Whether libp2p's store holds a reservation on `id`. */
  stored(id: PeerId): boolean
}

export class StandbyRelay {
  readonly #host: StandbyHost
  #standby: Candidate | undefined
  #running = false
  #renewTimer: NodeJS.Timeout | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #retryMs = 1_000

  constructor(host: StandbyHost) {
    this.#host = host
  }

  /** The relay holding the standby reservation, if any. */
  current(): Candidate | undefined {
    return this.#standby
  }

  /** Reserves a standby unless one is held or a try runs; runs after each choice of home and at each health check. */
  async reserve(): Promise<void> {
    const h = this.#host
    if (h.stopped() || h.home() === undefined || this.#running) return
    if (this.#standby !== undefined && h.stored(this.#standby.id)) return
    this.#standby = undefined
    this.#running = true
    try {
      // relays without an open connection (unreachable ones, a standby that went away) are measured again: one that
      // came back can be the standby, and a reservation is only asked for over a connection that answered
      await Promise.all(
        h.candidates
          .filter((c) => c !== h.home() && relayConnection(h.libp2p, c.id) === undefined)
          .map((c) => h.measure(c)),
      )
      const others = h.candidates
        .filter((c) => c !== h.home() && c.entry.state === 'standby' && c.entry.rttMs !== undefined)
        .sort((a, b) => (a.entry.rttMs ?? 0) - (b.entry.rttMs ?? 0))
      for (const c of others) {
        try {
          await h.obtain(c)
          if (h.home() === c || h.stopped()) return
          this.#standby = c
          c.entry.reserved = true
          this.#retryMs = 1_000
          h.log('info', `standby reservation on relay ${c.id}`)
          this.renewed(c, h.storedExpiry(c.id))
          return
        } catch (err) {
          h.log('debug', `no standby reservation on relay ${c.id}: ${(err as Error).message}`)
        }
      }
    } finally {
      this.#running = false
    }
    if (this.#standby === undefined) this.#retry()
  }

  /** `c` holds a reservation until `expire` (seconds or, as a number, ms since the epoch): renewed at half of it. */
  renewed(c: Candidate, expire: bigint | number | undefined): void {
    if (this.#standby !== c) return
    const expiresAt = expire === undefined ? undefined : typeof expire === 'bigint' ? Number(expire) * 1000 : expire
    if (expiresAt !== undefined) c.entry.expiresAt = expiresAt
    const left = (expiresAt ?? Date.now() + 60_000) - Date.now()
    clearTimeout(this.#renewTimer)
    this.#renewTimer = setTimeout(() => void this.#renew(c), Math.max(1_000, left / 2))
    this.#renewTimer.unref()
  }

  /** The standby relay was lost (`why`): no standby until a retry gets one again. */
  drop(c: Candidate, why: string): void {
    if (this.#standby !== c) return
    this.release(c)
    this.#host.log('info', `standby reservation on relay ${c.id} lost (${why}); reserving one again`)
    this.#retry()
  }

  /** `c` is no standby any more (it became home, or was lost). */
  release(c: Candidate): void {
    delete c.entry.reserved
    delete c.entry.expiresAt
    if (this.#standby !== c) return
    this.#standby = undefined
    clearTimeout(this.#renewTimer)
  }

  stop(): void {
    clearTimeout(this.#renewTimer)
    clearTimeout(this.#retryTimer)
  }

  async #renew(c: Candidate): Promise<void> {
    const h = this.#host
    if (this.#standby !== c || h.stopped()) return
    try {
      const { expiresAt } = await renewReservation(h.libp2p, c.id, AbortSignal.timeout(h.attemptMs))
      h.log('debug', `renewed the standby reservation on relay ${c.id}`)
      this.renewed(c, expiresAt)
    } catch (err) {
      this.drop(c, `renewing it failed: ${(err as Error).message}`)
    }
  }

  /** Tries for a standby again after a back-off (1 s, doubling to 30 s), while there is a home. */
  #retry(): void {
    const h = this.#host
    if (h.stopped() || h.home() === undefined || this.#retryTimer !== undefined || h.candidates.length < 2) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      void this.reserve()
    }, this.#retryMs)
    this.#retryTimer.unref()
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS)
  }
}
