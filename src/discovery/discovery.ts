/**
 * Discovery on one node: the DHT record publisher, the bootstrap connections, the mDNS table and the resolver, and
 * the dial logic that uses them — look the id up, dial, and after a failed dial to cached or configured addresses
 * look it up once more, fresh, before giving up.
 *
 * @example
 * ```ts
 * const discovery = Discovery.start(libp2p, { privateKey, settings: discoverySettings(config), log })
 * const conn = await discovery.connect({ id, addrs: [] }, (addrs) => dialAllPaths(libp2p, id, addrs, { signal }))
 * ```
 */
import type { Connection, PeerId, PrivateKey } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Config } from '../config/schema.ts'
import type { NodeOptions, WarrenLibp2p } from '../p2p/create.ts'
import { routingTableSize } from '../p2p/dht.ts'
import { MdnsTable, mdnsUseful } from '../p2p/mdns.ts'
import { Bootstrapper } from './bootstrap.ts'
import { type PublishStatus, RecordPublisher } from './publisher.ts'
import { type LookupOptions, type LookupResult, lookupAddrs, Resolver } from './resolver.ts'
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
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void
}

export class Discovery {
  readonly resolver: Resolver
  readonly publisher: RecordPublisher | undefined
  readonly mdns: MdnsTable | undefined
  readonly #libp2p: WarrenLibp2p
  readonly #settings: DiscoverySettings
  readonly #bootstrap: Bootstrapper | undefined
  readonly #log: NonNullable<DiscoveryOptions['log']>

  private constructor(libp2p: WarrenLibp2p, opts: DiscoveryOptions) {
    this.#libp2p = libp2p
    this.#settings = opts.settings
    this.#log = opts.log ?? (() => {})
    const dht = libp2p.services.dht
    if (libp2p.services.mdns !== undefined) {
      this.mdns = new MdnsTable()
      this.mdns.watch(libp2p.services.mdns)
    }
    if (dht !== undefined) {
      this.publisher = new RecordPublisher(libp2p, dht, opts.privateKey, {
        republishMs: opts.settings.republishMs,
        privateAddresses: opts.settings.privateAddresses,
        log: this.#log,
      })
      this.#bootstrap = new Bootstrapper(libp2p, dht, opts.settings.bootstrap, this.#log)
    }
    this.resolver = new Resolver({
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

  /** Starts publishing and bootstrapping on a started libp2p node (with `services.dht`/`mdns` as configured). */
  static start(libp2p: WarrenLibp2p, opts: DiscoveryOptions): Discovery {
    const d = new Discovery(libp2p, opts)
    d.#bootstrap?.start()
    d.publisher?.start()
    return d
  }

  lookup(id: PeerId, opts: LookupOptions = {}): Promise<LookupResult> {
    return this.resolver.lookup(id, opts)
  }

  /**
   * Finds addresses for `target.id` (its own `addrs` are the config source) and dials them with `dial`. A failed dial
   * to cached or configured addresses drops the cache entry and triggers one fresh lookup; new addresses are dialed.
   * With no address anywhere but some in libp2p's peer store (`stored`), `dial([])` tries those.
   */
  async connect(
    target: { id: PeerId; addrs: Multiaddr[] },
    dial: (addrs: Multiaddr[]) => Promise<Connection>,
    opts: { signal?: AbortSignal; stored?: boolean } = {},
  ): Promise<Connection> {
    const base: LookupOptions = { ...(opts.signal === undefined ? {} : { signal: opts.signal }) }
    let first: LookupResult
    try {
      first = await this.resolver.lookup(target.id, { ...base, configAddrs: target.addrs })
    } catch (err) {
      if (opts.stored === true && opts.signal?.aborted !== true) return dial([])
      throw err
    }
    try {
      return await dial(lookupAddrs(first, multiaddr))
    } catch (err) {
      if (first.source === 'cache') this.resolver.invalidate(target.id)
      if (first.source === 'mdns' || first.source === 'dht' || opts.signal?.aborted === true) throw err
      const again = await this.resolver.lookup(target.id, { ...base, fresh: true }).catch(() => undefined)
      const tried = new Set(first.addrs.map((a) => a.addr))
      const fresh = again?.addrs.filter((a) => !tried.has(a.addr)) ?? []
      if (again === undefined || fresh.length === 0) throw err
      this.#log('info', `${target.id}: ${first.source} addresses failed; dialing ${fresh.length} from ${again.source}`)
      return dial(lookupAddrs(again, multiaddr))
    }
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

  stop(): void {
    this.publisher?.stop()
    this.#bootstrap?.stop()
    this.mdns?.stop()
  }
}
