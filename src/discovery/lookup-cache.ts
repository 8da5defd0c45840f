/**
 * Results of successful lookups, reused for `ttlMs` so that opening many streams to a node costs one lookup. A failed
 * dial to cached addresses drops the entry ({@link LookupCache.delete}), so the next lookup asks the sources again.
 */
import type { Multiaddr } from '@multiformats/multiaddr'

export interface CacheEntry {
  addrs: Multiaddr[]
  /** The source that found the addresses. */
  origin: 'mdns' | 'dht'
  /** When they were cached, ms since the epoch. */
  cachedAt: number
  /** When the source's information was made (record published, mDNS answer), ms since the epoch. */
  madeAt: number
}

const MAX_ENTRIES = 4_096

export class LookupCache {
  readonly #ttlMs: number
  readonly #entries = new Map<string, CacheEntry>()

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs
  }

  /** A fresh entry, or undefined (expired entries are dropped). */
  get(id: string, now = Date.now()): CacheEntry | undefined {
    const e = this.#entries.get(id)
    if (e === undefined) return undefined
    if (now - e.cachedAt >= this.#ttlMs) {
      this.#entries.delete(id)
      return undefined
    }
    return e
  }

  set(id: string, entry: CacheEntry): void {
    if (this.#ttlMs === 0) return
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    if (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
  }

  delete(id: string): void {
    this.#entries.delete(id)
  }

  get size(): number {
    return this.#entries.size
  }
}
