/**
 * What `DirectPaths` keeps per peer (by base58 id): the latest upgrade status, the upgrade running, and the one
 * scheduled retry or re-punch.
 *
 * @packageDocumentation
 */
import type { PeerId } from '@libp2p/interface'
import type { DirectPathStatus } from './types.ts'

export class PeerStates {
  readonly #status = new Map<string, DirectPathStatus>()
  readonly #running = new Map<string, Promise<void>>()
  readonly #timers = new Map<string, NodeJS.Timeout>()

  record(peer: PeerId, s: Omit<DirectPathStatus, 'at'>): void {
    this.#status.set(peer.toString(), { ...s, at: Date.now() })
  }

  /** How many direct paths to `peer` were lost so far (kept across re-punches). */
  lost(peer: PeerId): number | undefined {
    return this.#status.get(peer.toString())?.lost
  }

  /** Drops the peer's status (it is gone: nothing to report or retry). */
  forget(peer: PeerId): void {
    this.#status.delete(peer.toString())
  }

  /** The latest status per peer. */
  all(): Record<string, DirectPathStatus> {
    return Object.fromEntries(this.#status)
  }

  /** The peer's running upgrade, or `start()` as the running one when none runs. */
  once(peer: PeerId, start: () => Promise<void>): Promise<void> {
    const key = peer.toString()
    const running = this.#running.get(key)
    if (running !== undefined) return running
    const p = start().finally(() => this.#running.delete(key))
    this.#running.set(key, p)
    return p
  }

  /** Settles once every running upgrade did. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#running.values()])
  }

  /** Runs `run` after `ms` (a timer that keeps no process alive), in place of the peer's scheduled one. */
  schedule(peer: PeerId, ms: number, run: () => void): void {
    const key = peer.toString()
    this.cancel(peer)
    const t = setTimeout(() => {
      this.#timers.delete(key)
      run()
    }, ms)
    t.unref()
    this.#timers.set(key, t)
  }

  /** Cancels the peer's scheduled retry or re-punch. */
  cancel(peer: PeerId): void {
    const key = peer.toString()
    clearTimeout(this.#timers.get(key))
    this.#timers.delete(key)
  }

  cancelAll(): void {
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }
}
