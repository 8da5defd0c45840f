/**
 * Turning a node id into addresses. Sources are tried in order, and the first that knows the node answers:
 *
 * 1. `cache`: a fresh result of an earlier lookup (TTL `discovery.cacheTtlMs`);
 * 2. `config`: addresses from `peers` tickets, tickets and `--addr` given before (the address book);
 * 3. `mdns`: nodes that answered on the LAN;
 * 4. `dht`: the node's signed record in Warren's DHT.
 *
 * One deadline (`discovery.lookupTimeoutMs`) covers all of them; when none knows the node the lookup fails with
 * ERR_LOOKUP_FAILED saying what each source answered. `fresh` skips the cache and the config (used after a dial to
 * those addresses failed); `all` asks every source and merges the answers (for `warren lookup`).
 *
 * @example
 * ```ts
 * const r = await resolver.lookup(id)
 * r.addrs   // [{ addr: '/ip4/…/tcp/4781', source: 'dht', ageMs: 1200 }, …]
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'
import type { WarrenKadDHT } from '../p2p/dht.ts'
import type { MdnsTable } from '../p2p/mdns.ts'
import { findPeerRecord } from './dht-lookup.ts'
import { LookupCache } from './lookup-cache.ts'

export type SourceName = 'cache' | 'config' | 'mdns' | 'dht'

export interface FoundAddr {
  addr: string
  source: SourceName
  /** For `cache`: the source that found it. */
  origin?: 'mdns' | 'dht'
  /** Age of the information (record published, mDNS answer, cache entry made), ms; absent for config. */
  ageMs?: number
}

export interface SourceReport {
  source: SourceName
  found: boolean
  /** What the source answered, in words. */
  note: string
}

export interface LookupResult {
  id: string
  /** The source whose addresses are used (with `all`: the first that found any). */
  source: SourceName
  addrs: FoundAddr[]
  tried: SourceReport[]
  elapsedMs: number
}

export interface LookupOptions {
  /** Addresses the address book has for the node (the `config` source). */
  configAddrs?: readonly Multiaddr[]
  fresh?: boolean
  all?: boolean
  signal?: AbortSignal
}

export interface ResolverOptions {
  timeoutMs: number
  cacheTtlMs: number
  dht?: WarrenKadDHT
  mdns?: MdnsTable
  /**
   * The configured DHT servers' addresses when every one of them is private and discovery.privateAddresses is false
   * (so the DHT left them all out); undefined otherwise. Names the cause when no DHT server is known.
   */
  privateServers?: () => string[] | undefined
}

/** A DHT source note saying that the configured DHT servers were filtered as private. */
export function privateServersNote(addrs: readonly string[]): string {
  return `the DHT servers in \`relays\` have only private addresses (${addrs.join(', ')}), which this node leaves out while discovery.privateAddresses is false`
}

interface Hit {
  source: SourceName
  addrs: Multiaddr[]
  madeAt?: number
  origin?: 'mdns' | 'dht'
}

export class Resolver {
  readonly cache: LookupCache
  readonly #opts: ResolverOptions

  constructor(opts: ResolverOptions) {
    this.#opts = opts
    this.cache = new LookupCache(opts.cacheTtlMs)
  }

  /** Resolves `id` to addresses or throws ERR_LOOKUP_FAILED (also when the deadline passes). */
  async lookup(id: PeerId, opts: LookupOptions = {}): Promise<LookupResult> {
    const started = Date.now()
    const key = id.toString()
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs)
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
    const tried: SourceReport[] = []
    const hits: Hit[] = []
    const report = (source: SourceName, hit: Hit | undefined, miss: string): boolean => {
      tried.push({
        source,
        found: hit !== undefined,
        note: hit === undefined ? miss : `${hit.addrs.length} address(es)`,
      })
      if (hit !== undefined) hits.push(hit)
      return hit !== undefined && opts.all !== true
    }
    const done = (): LookupResult => this.#result(key, hits, tried, started)

    if (opts.fresh !== true) {
      const c = this.cache.get(key)
      const hit = c && { source: 'cache' as const, addrs: c.addrs, madeAt: c.cachedAt, origin: c.origin }
      if (report('cache', hit, 'nothing cached')) return done()
      const cfg = opts.configAddrs ?? []
      if (
        report(
          'config',
          cfg.length > 0 ? { source: 'config', addrs: [...cfg] } : undefined,
          'no address in peers, tickets or --addr',
        )
      ) {
        return done()
      }
    }
    if (this.#opts.mdns !== undefined) {
      const m = this.#opts.mdns.get(id)
      const hit = m && { source: 'mdns' as const, addrs: m.addrs, madeAt: m.seenAt }
      if (hit !== undefined)
        this.cache.set(key, { addrs: m!.addrs, origin: 'mdns', cachedAt: Date.now(), madeAt: m!.seenAt })
      if (report('mdns', hit, 'not heard of on the LAN')) return done()
    }
    let privateOnly = false
    if (this.#opts.dht !== undefined) {
      let hit: Hit | undefined
      let miss = ''
      try {
        const found = await findPeerRecord(this.#opts.dht, id, signal)
        if ('record' in found && found.record.addrs.length > 0) {
          hit = { source: 'dht', addrs: found.record.addrs, madeAt: found.record.seq }
          this.cache.set(key, {
            addrs: found.record.addrs,
            origin: 'dht',
            cachedAt: Date.now(),
            madeAt: found.record.seq,
          })
        } else if ('record' in found) miss = 'its record lists no address'
        else {
          const filtered = found.servers === 0 ? this.#opts.privateServers?.() : undefined
          miss = filtered === undefined ? found.miss : privateServersNote(filtered)
          if (filtered !== undefined) privateOnly = true
        }
      } catch (err) {
        miss = signal.aborted
          ? `no answer within ${this.#opts.timeoutMs} ms`
          : `the query failed: ${(err as Error).message}`
      }
      if (report('dht', hit, miss)) return done()
    }
    if (hits.length > 0) return done()
    // with no mDNS running and no DHT server known there was nobody to ask: the plain "no address" error
    const asked = this.#opts.mdns !== undefined || tried.some((t) => t.source === 'dht' && !t.note.startsWith('no DHT'))
    if (privateOnly) throw privateAddressesFiltered(key, tried)
    throw asked ? lookupFailed(key, tried, this.#opts.timeoutMs) : noAddresses(key, tried)
  }

  /** Forgets the cached addresses of `id` (a dial to them failed). */
  invalidate(id: PeerId): void {
    this.cache.delete(id.toString())
  }

  #result(id: string, hits: Hit[], tried: SourceReport[], started: number): LookupResult {
    const now = Date.now()
    const addrs: FoundAddr[] = []
    for (const h of hits) {
      for (const a of h.addrs) {
        const f: FoundAddr = { addr: a.toString(), source: h.source }
        if (h.origin !== undefined) f.origin = h.origin
        if (h.madeAt !== undefined) f.ageMs = Math.max(0, now - h.madeAt)
        addrs.push(f)
      }
    }
    return { id, source: hits[0]!.source, addrs, tried, elapsedMs: now - started }
  }
}

/** The multiaddrs of the sources a lookup found (every hit, duplicates removed). */
export function lookupAddrs(result: LookupResult, parse: (a: string) => Multiaddr): Multiaddr[] {
  return [...new Set(result.addrs.map((a) => a.addr))].map(parse)
}

/** Nothing knows the node and no network source could be asked (no relay in `relays`, no LAN discovery). */
export function noAddresses(id: string, tried: readonly SourceReport[]): WarrenError {
  return new WarrenError('ERR_NO_ADDRESSES', `no address is known for node ${id}`, {
    hint: "Use the node's ticket (`warren id` on that node) instead of its id, or pass --addr <multiaddr>.",
    details: { peer: id, tried },
  })
}

export function lookupFailed(id: string, tried: readonly SourceReport[], timeoutMs: number): WarrenError {
  const what = tried.map((t) => `${t.source}: ${t.note}`).join('; ')
  return new WarrenError('ERR_LOOKUP_FAILED', `no address found for node ${id} (${what})`, {
    hint:
      'Check that the node runs and shares a relay or LAN with this one (`warren status` on it shows its last DHT ' +
      `publish), or use its ticket (\`warren id\` there) or --addr. The lookup waits ${timeoutMs} ms ` +
      '(discovery.lookupTimeoutMs).',
    details: { peer: id, tried },
  })
}

/** Nothing found because every address of the configured DHT servers was private and left out. */
export function privateAddressesFiltered(id: string, tried: readonly SourceReport[]): WarrenError {
  const what = tried.map((t) => `${t.source}: ${t.note}`).join('; ')
  return new WarrenError('ERR_LOOKUP_FAILED', `no address found for node ${id} (${what})`, {
    hint:
      'The addresses found are private and discovery.privateAddresses is false. On a LAN or lab network set ' +
      '"discovery": { "privateAddresses": true } in config.json on every node and start the relays with ' +
      "--private-addresses; else use the node's ticket (`warren id` there) or --addr.",
    details: { peer: id, tried, privateAddresses: false },
  })
}
