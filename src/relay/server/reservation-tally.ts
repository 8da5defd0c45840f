/**
 * The counts a new reservation is checked against (`maxReservations`, `maxReservationsPerIp`), kept as reservations
 * come and go instead of counted over every held one for each request. At 10,000 held reservations that count took
 * ~0.6 ms in a loop, and it runs twice for each reservation asked for (the gater, then again in the tick that stores
 * it): O(n) per reservation, O(n²) to fill a relay.
 *
 * Only reservations of nodes that are not allowed count ({@link RelayPolicy.isAllowed}). Whether a node is allowed
 * changes with a reload or a token: {@link ReservationTally.refresh} takes one node's change, and a new
 * {@link RelayPolicy.epoch} (a reload, or a token admission that made the policy forget an older one) has every held
 * reservation counted again once, at the next {@link ReservationTally.load}.
 *
 * @example
 * ```ts
 * const tally = new ReservationTally({ isAllowed: (n) => policy.isAllowed(n), epoch: () => policy.epoch, groupOf })
 * tally.set(node, addr) // the store holds a reservation of `node`, asked for from `addr`
 * tally.load(node, ip)  // { boundedHeld, sameIp } without `node`'s own
 * ```
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ReservationLoad } from './policy.ts'

export interface TallyInputs {
  /** On the allow list, or admitted by a token: such nodes' reservations do not count. */
  isAllowed(node: string): boolean
  /** Changes whenever `isAllowed` may have changed for nodes no one told the tally about. */
  epoch(): number
  /** The per-IP group a reservation from `addr` counts against; undefined when uncapped or unknown. */
  groupOf(addr: Multiaddr | undefined): string | undefined
}

interface Held {
  group: string | undefined
  /** Counted in {@link ReservationTally.load}'s totals: the node was not allowed when last looked at. */
  bounded: boolean
}

export class ReservationTally {
  readonly #in: TallyInputs
  readonly #held = new Map<string, Held>()
  readonly #perGroup = new Map<string, number>()
  #bounded = 0
  /** The policy's epoch the counts are of; none yet, so the first {@link load} counts whatever is held then. */
  #epoch: number | undefined

  /** `inputs` are not called until the first reservation or {@link load}. */
  constructor(inputs: TallyInputs) {
    this.#in = inputs
  }

  /** The store holds a reservation of `node` from `addr` (a new one, or a renewal, possibly from a new address). */
  set(node: string, addr: Multiaddr | undefined): void {
    this.#uncount(node)
    const held: Held = { group: this.#in.groupOf(addr), bounded: !this.#in.isAllowed(node) }
    this.#held.set(node, held)
    this.#count(held, 1)
  }

  /** The store no longer holds a reservation of `node`. */
  delete(node: string): void {
    this.#uncount(node)
    this.#held.delete(node)
  }

  /** The store dropped every reservation. */
  clear(): void {
    this.#held.clear()
    this.#perGroup.clear()
    this.#bounded = 0
  }

  /** Whether `node` is allowed may have changed (a token admitted it): its reservation, if held, is counted again. */
  refresh(node: string): void {
    const held = this.#held.get(node)
    if (held === undefined) return
    const bounded = !this.#in.isAllowed(node)
    if (bounded === held.bounded) return
    this.#count(held, -1)
    held.bounded = bounded
    this.#count(held, 1)
  }

  /** Reservations of non-allowed nodes other than `except`: in total, and in the group `ip` (when capped). */
  load(except: string, ip: string | undefined): ReservationLoad {
    this.#recountOnNewEpoch()
    const own = this.#held.get(except)
    const ownCounts = own?.bounded === true
    const boundedHeld = this.#bounded - (ownCounts ? 1 : 0)
    if (ip === undefined) return { boundedHeld }
    const held = (this.#perGroup.get(ip) ?? 0) - (ownCounts && own.group === ip ? 1 : 0)
    return { boundedHeld, sameIp: { ip, held } }
  }

  /** Held reservations (tests). */
  get size(): number {
    return this.#held.size
  }

  #recountOnNewEpoch(): void {
    const epoch = this.#in.epoch()
    if (epoch === this.#epoch) return
    this.#epoch = epoch
    this.#perGroup.clear()
    this.#bounded = 0
    for (const [node, held] of this.#held) {
      held.bounded = !this.#in.isAllowed(node)
      this.#count(held, 1)
    }
  }

  #uncount(node: string): void {
    const held = this.#held.get(node)
    if (held !== undefined) this.#count(held, -1)
  }

  #count(held: Held, by: 1 | -1): void {
    if (!held.bounded) return
    this.#bounded += by
    if (held.group === undefined) return
    const n = (this.#perGroup.get(held.group) ?? 0) + by
    if (n === 0) this.#perGroup.delete(held.group)
    else this.#perGroup.set(held.group, n)
  }
}
