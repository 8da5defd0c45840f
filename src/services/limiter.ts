/**
 * Slots for open service streams. Two budgets, so that nodes this node does not name can never take the slots of
 * the nodes it does:
 *
 * - named peers (in `peers` or named in an `allow` list): `limits.maxStreams` in total, `limits.maxStreamsPerPeer`
 *   each, whatever service they use;
 * - every other node (it can only reach public `"*"` services): `limits.maxPublicStreams` in total,
 *   `limits.maxPublicStreamsPerPeer` each.
 */

/** Counts open service streams, in total and per peer, and refuses past the limits with a reason. */
export class StreamLimiter {
  #max: number
  #maxPerPeer: number
  readonly #perPeer = new Map<string, number>()
  readonly #what: { total: string; perPeer: string }
  #total = 0

  /** `what` words the refusals; the default is the named peers' budget. */
  constructor(max: number, maxPerPeer: number, what?: { total: string; perPeer: string }) {
    this.#max = max
    this.#maxPerPeer = maxPerPeer
    this.#what = what ?? { total: 'open service streams', perPeer: 'open service streams per peer' }
  }

  /** A release function, or the reason for refusing. */
  acquire(peer: string): (() => void) | string {
    if (this.#total >= this.#max) return `this node is at its limit of ${this.#max} ${this.#what.total}`
    const n = this.#perPeer.get(peer) ?? 0
    if (n >= this.#maxPerPeer) return `this node is at its limit of ${this.#maxPerPeer} ${this.#what.perPeer}`
    this.#total++
    this.#perPeer.set(peer, n + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.#total--
      const left = (this.#perPeer.get(peer) ?? 1) - 1
      if (left === 0) this.#perPeer.delete(peer)
      else this.#perPeer.set(peer, left)
    }
  }

  /** New limits (config reload): streams over them keep their slots, new ones are refused until under. */
  setLimits(max: number, maxPerPeer: number): void {
    this.#max = max
    this.#maxPerPeer = maxPerPeer
  }

  /** Streams holding a slot now. */
  get active(): number {
    return this.#total
  }
}

export interface BudgetLimits {
  maxStreams: number
  maxStreamsPerPeer: number
  maxPublicStreams: number
  maxPublicStreamsPerPeer: number
}

/** The two budgets: {@link StreamBudgets.acquire} takes a slot from the one the peer belongs to. */
export class StreamBudgets {
  readonly named: StreamLimiter
  readonly public: StreamLimiter

  constructor(limits: BudgetLimits) {
    this.named = new StreamLimiter(limits.maxStreams, limits.maxStreamsPerPeer)
    this.public = new StreamLimiter(limits.maxPublicStreams, limits.maxPublicStreamsPerPeer, {
      total: 'open streams from nodes it does not name (public services)',
      perPeer: 'open streams per node it does not name (public services)',
    })
  }

  /** New limits (config reload). */
  setLimits(limits: BudgetLimits): void {
    this.named.setLimits(limits.maxStreams, limits.maxStreamsPerPeer)
    this.public.setLimits(limits.maxPublicStreams, limits.maxPublicStreamsPerPeer)
  }

  /** A release function, or the reason for refusing; `named`: the peer is in `peers` or an allow list. */
  acquire(peer: string, named: boolean): (() => void) | string {
    return (named ? this.named : this.public).acquire(peer)
  }
}
