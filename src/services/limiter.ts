/** Counts open service streams, in total and per peer, and refuses past the limits with a reason. */
export class StreamLimiter {
  readonly #max: number
  readonly #maxPerPeer: number
  readonly #perPeer = new Map<string, number>()
  #total = 0

  constructor(max: number, maxPerPeer: number) {
    this.#max = max
    this.#maxPerPeer = maxPerPeer
  }

  /** A release function, or the reason for refusing. */
  acquire(peer: string): (() => void) | string {
    if (this.#total >= this.#max) return `this node is at its limit of ${this.#max} open service streams`
    const n = this.#perPeer.get(peer) ?? 0
    if (n >= this.#maxPerPeer) return `this node is at its limit of ${this.#maxPerPeer} open service streams per peer`
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
}
