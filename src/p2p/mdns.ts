/**
 * LAN discovery: js-libp2p's `@libp2p/mdns` on Warren's own service name, and a table of the nodes it found, so that
 * two nodes on one LAN reach each other directly with no relay and no DHT.
 *
 * mDNS answers carry only private addresses (js-libp2p's rule); loopback ones are dropped here, since another
 * machine cannot dial them. It runs only on a node that listens on a non-loopback address ({@link mdnsUseful}): a
 * node bound to 127.0.0.1 has nothing to offer its LAN and stays silent on it.
 *
 * @example
 * ```ts
 * const table = new MdnsTable()
 * table.watch(libp2p.services.mdns)
 * table.get(peerId)    // { addrs, seenAt } or undefined
 * ```
 */
import type { PeerDiscovery, PeerId, PeerInfo } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { isLoopback } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'

export const MDNS_SERVICE_TAG = '_warren._udp.local'
/** How often a node asks the LAN who is there, ms. */
export const MDNS_INTERVAL_MS = 10_000
/** A node not heard of for this long is forgotten (mDNS answers have a TTL of 120 s), ms. */
export const MDNS_FORGET_MS = 120_000
const MAX_ENTRIES = 1_024

export function warrenMdns(): ReturnType<typeof mdns> {
  return mdns({ serviceTag: MDNS_SERVICE_TAG, interval: MDNS_INTERVAL_MS })
}

/** True when some listen address is not loopback (mDNS would have something to announce). */
export function mdnsUseful(listen: readonly string[]): boolean {
  return listen.some((a) => {
    try {
      return !isLoopback(multiaddr(a))
    } catch {
      return false
    }
  })
}

export interface MdnsEntry {
  addrs: Multiaddr[]
  /** When it last answered, ms since the epoch. */
  seenAt: number
}

export class MdnsTable {
  readonly #entries = new Map<string, MdnsEntry>()
  #source: PeerDiscovery | undefined

  readonly #onPeer = (evt: CustomEvent<PeerInfo>): void => {
    const addrs = evt.detail.multiaddrs.filter((a) => !isLoopback(a))
    if (addrs.length === 0) return
    const key = evt.detail.id.toString()
    this.#entries.delete(key)
    this.#entries.set(key, { addrs, seenAt: Date.now() })
    if (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
  }

  watch(source: PeerDiscovery): void {
    this.#source = source
    source.addEventListener('peer', this.#onPeer)
  }

  get(id: PeerId): MdnsEntry | undefined {
    const e = this.#entries.get(id.toString())
    if (e === undefined) return undefined
    if (Date.now() - e.seenAt > MDNS_FORGET_MS) {
      this.#entries.delete(id.toString())
      return undefined
    }
    return e
  }

  /** Nodes heard of recently. */
  size(): number {
    const now = Date.now()
    return [...this.#entries.values()].filter((e) => now - e.seenAt <= MDNS_FORGET_MS).length
  }

  stop(): void {
    this.#source?.removeEventListener('peer', this.#onPeer)
    this.#source = undefined
  }
}
