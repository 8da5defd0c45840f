/**
 * Discovery on one node: the DHT record publisher, the bootstrap connections, the mDNS table and the resolver that
 * answers lookups by id from them (cache, configured addresses, mDNS, DHT). Dialing is the node's (src/node/dial).
 *
 * @example
 * ```ts
 * const discovery = new Discovery(libp2p, { privateKey, settings: discoverySettings(config), log })
 * await discovery.start()
 * const found = await discovery.lookup(id, { configAddrs })
 * ```
 */

import type { PeerId, PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Config } from '../config/schema.ts'
import type { Logger } from '../log.ts'
import type { NodeOptions, WarrenLibp2p } from '../p2p/create.ts'
import { routingTableSize } from '../p2p/dht.ts'
import { MdnsTable, mdnsUseful } from '../p2p/mdns.ts'
import { publishableAddrs } from '../p2p/peer-record.ts'
import { Bootstrapper } from './bootstrap.ts'
import { type PublishStatus, RecordPublisher } from './publisher.ts'
import { type LookupOptions, type LookupResult, Resolver } from './resolver.ts'
import { type DiscoverySettings, discoverySettings } from './settings.ts'

export interface DiscoveryStatus {
  dht:
    | { enabled: false }
    | {
        enabled: true
        mode: 'client' | 'server'
        /** DHT servers in the routing table. */
        routingTable: number
        publish: PublishStatus
      }
  mdns: { enabled: boolean; peers: number }
  cache: { entries: number; ttlMs: number }
}

export interface DiscoveryOptions {
  privateKey: PrivateKey
  settings: DiscoverySettings
  log?: Logger
}

/** Discovery's part of a node: {@link start} on a started libp2p node (with `services.dht`/`mdns` as configured). */
export class Discovery {
  readonly resolver: Resolver
  readonly publisher: RecordPublisher | undefined
  readonly mdns: MdnsTable | undefined
  readonly #libp2p: WarrenLibp2p
  readonly #settings: DiscoverySettings
  readonly #bootstrap: Bootstrapper | undefined

  constructor(libp2p: WarrenLibp2p, opts: DiscoveryOptions) {
    this.#libp2p = libp2p
    this.#settings = opts.settings
    const log = opts.log ?? (() => {})
    const dht = libp2p.services.dht
    if (libp2p.services.mdns !== undefined) this.mdns = new MdnsTable()
    if (dht !== undefined) {
      this.publisher = new RecordPublisher(libp2p, dht, opts.privateKey, {
        republishMs: opts.settings.republishMs,
        privateAddresses: opts.settings.privateAddresses,
        relays: opts.settings.bootstrap,
        log,
      })
      this.#bootstrap = new Bootstrapper(libp2p, dht, opts.settings.bootstrap, log)
    }
    this.resolver = new Resolver({
      privateServers: () => privateServers(opts.settings),
      timeoutMs: opts.settings.lookupTimeoutMs,
      cacheTtlMs: opts.settings.cacheTtlMs,
      ...(dht === undefined ? {} : { dht }),
      ...(this.mdns === undefined ? {} : { mdns: this.mdns }),
    })
  }

  /** The libp2p services a node with this config runs: the DHT, and mDNS when it listens beyond loopback. */
  static nodeOptions(config: Config, listen: readonly string[]): Pick<NodeOptions, 'dht' | 'mdns'> {
    const s = discoverySettings(config)
    return {
      ...(s.dht ? { dht: { mode: s.dhtMode, privateAddresses: s.privateAddresses } } : {}),
      mdns: s.mdns && mdnsUseful(listen),
    }
  }

  /** Watches mDNS, starts bootstrapping and publishing this node's record. */
  async start(): Promise<void> {
    const mdns = this.#libp2p.services.mdns
    if (mdns !== undefined) this.mdns?.watch(mdns)
    this.#bootstrap?.start()
    this.publisher?.start()
  }

  /** Where `id` can be reached; throws ERR_LOOKUP_FAILED (src/discovery/resolver.ts). */
  lookup(id: PeerId, opts: LookupOptions = {}): Promise<LookupResult> {
    return this.resolver.lookup(id, opts)
  }

  /** Drops the cached addresses of `id` (after a failed dial to them). */
  forget(id: PeerId): void {
    this.resolver.invalidate(id)
  }

  status(): DiscoveryStatus {
    const dht = this.#libp2p.services.dht
    return {
      dht:
        dht === undefined || this.publisher === undefined
          ? { enabled: false }
          : {
              enabled: true,
              mode: dht.getMode(),
              routingTable: routingTableSize(dht),
              publish: this.publisher.status(),
            },
      mdns: { enabled: this.mdns !== undefined, peers: this.mdns?.size() ?? 0 },
      cache: { entries: this.resolver.cache.size, ttlMs: this.#settings.cacheTtlMs },
    }
  }

  async stop(): Promise<void> {
    this.publisher?.stop()
    this.#bootstrap?.stop()
    this.mdns?.stop()
  }
}

/**
 * The configured DHT servers' addresses (without /p2p/…) when discovery.privateAddresses is false and every one of
 * them is private, so that the DHT leaves them all out; undefined otherwise.
 */
export function privateServers(settings: DiscoverySettings): string[] | undefined {
  if (settings.privateAddresses || settings.bootstrap.length === 0) return undefined
  const addrs = settings.bootstrap.flatMap((a) => {
    try {
      return [multiaddr(a)]
    } catch {
      return []
    }
  })
  if (addrs.length === 0 || publishableAddrs(addrs, false).length > 0) return undefined
  return [...new Set(addrs.map((a) => a.decapsulateCode(421).toString()))]
}
