/**
 * Connecting to a node, the whole policy in one place: resolve the name (alias, id or ticket) unless the caller already
 * did, reuse an open connection (direct preferred), else look its addresses up (cache, configured addresses, mDNS,
 * DHT) and dial every path at once (direct addresses and each relay: ./parallel-dial.ts). When a dial to cached or
 * configured addresses fails, the cache entry is dropped and one fresh lookup follows; its new addresses are dialed.
 *
 * @example
 * ```ts
 * const dialer = new Dialer(libp2p, addressBook, discovery, { dialTimeoutMs: 10_000 })
 * const conn = await dialer.connect('laptop')
 * const again = await dialer.connect(addressBook.resolve('laptop'))   // already resolved: not resolved again
 * ```
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Discovery } from '../../discovery/discovery.ts'
import { type LookupOptions, type LookupResult, lookupAddrs } from '../../discovery/resolver.ts'
import { isWarrenError, WarrenError } from '../../errors.ts'
import type { AddressBook, ResolvedNode } from '../../identity/address-book.ts'
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { bestConnection } from '../../p2p/path.ts'
import { dialAllPaths } from './parallel-dial.ts'

/** How {@link Dialer.connect} treats a node name. */
export interface ConnectOptions {
  /** More addresses to try (`--addr`); only with a name. */
  addrs?: string[]
  signal?: AbortSignal
  /** false: refuse a ticket or address this node does not already know (ERR_UNKNOWN_ADDRESSES); only with a name. */
  allowNewAddresses?: boolean
}

export interface DialerOptions {
  /** Time for one dial over all paths, ms (config limits.dialTimeoutMs), unless the caller gives a signal. */
  dialTimeoutMs: number
  log?: Logger
}

export class Dialer {
  readonly #libp2p: WarrenLibp2p
  readonly #book: AddressBook
  readonly #discovery: Discovery
  readonly #timeoutMs: number
  readonly #log: Logger

  constructor(libp2p: WarrenLibp2p, book: AddressBook, discovery: Discovery, opts: DialerOptions) {
    this.#libp2p = libp2p
    this.#book = book
    this.#discovery = discovery
    this.#timeoutMs = opts.dialTimeoutMs
    this.#log = opts.log ?? (() => {})
  }

  /**
   * Connects to `node`: a name, resolved through the address book, or a node the caller resolved already
   * ({@link AddressBook.resolve}'s result, used as it is). Reuses an open connection (direct preferred).
   */
  async connect(node: string | ResolvedNode, opts: ConnectOptions = {}): Promise<Connection> {
    if (typeof node === 'string' && (opts.addrs ?? []).length === 0 && opts.allowNewAddresses !== false) {
      // a node this node is connected to needs no addresses: its name is not resolved again (a forward asks for
      // every client connection); the first use resolved it and learned the addresses its ticket carries
      const id = this.#book.idOf(node)
      const open = id === undefined || id.equals(this.#libp2p.peerId) ? undefined : this.#libp2p.getConnections(id)
      const existing = open === undefined || open.length === 0 ? undefined : bestConnection(open)
      if (existing !== undefined) return existing
    }
    const target =
      typeof node === 'string'
        ? this.#book.resolve(node, opts.addrs, opts.allowNewAddresses === false ? { allowNewAddresses: false } : {})
        : node
    if (target.id.equals(this.#libp2p.peerId)) {
      const name = typeof node === 'string' ? node : (node.alias ?? node.id.toString())
      throw new WarrenError('ERR_DIAL_FAILED', `${name} is this node itself`, {
        hint: 'Reach local services directly at their target address.',
      })
    }
    const existing = bestConnection(this.#libp2p.getConnections(target.id))
    if (existing !== undefined) return existing
    return this.#lookUpAndDial(target, opts.signal)
  }

  /**
   * Looks `target.id` up (its own `addrs` are the config source) and dials what was found. A failed dial to cached or
   * configured addresses drops the cache entry and triggers one fresh lookup; new addresses are dialed. With no
   * address anywhere but some in libp2p's peer store, those are dialed.
   */
  async #lookUpAndDial(target: ResolvedNode, signal: AbortSignal | undefined): Promise<Connection> {
    const stored = await this.#hasStoredAddrs(target.id)
    const base: LookupOptions = signal === undefined ? {} : { signal }
    let first: LookupResult
    try {
      first = await this.#discovery.lookup(target.id, { ...base, configAddrs: target.addrs })
    } catch (err) {
      if (stored && signal?.aborted !== true) return this.#dial(target.id, [], signal)
      throw err
    }
    try {
      return await this.#dial(target.id, lookupAddrs(first, multiaddr), signal)
    } catch (err) {
      if (first.source === 'cache') this.#discovery.forget(target.id)
      if (first.source === 'mdns' || first.source === 'dht' || signal?.aborted === true) throw err
      const again = await this.#discovery.lookup(target.id, { ...base, fresh: true }).catch(() => undefined)
      const tried = new Set(first.addrs.map((a) => a.addr))
      const fresh = again?.addrs.filter((a) => !tried.has(a.addr)) ?? []
      if (again === undefined || fresh.length === 0) throw err
      this.#log('info', `${target.id}: ${first.source} addresses failed; dialing ${fresh.length} from ${again.source}`)
      return this.#dial(target.id, lookupAddrs(again, multiaddr), signal)
    }
  }

  /** Dials `addrs` and the peer store's addresses of `id`: direct ones and every relay at once. */
  async #dial(id: PeerId, addrs: Multiaddr[], signal: AbortSignal | undefined): Promise<Connection> {
    if (addrs.length > 0) await this.#libp2p.peerStore.merge(id, { multiaddrs: addrs })
    try {
      const stored = await this.#libp2p.peerStore.get(id).then(
        (p) => p.addresses.map((a) => a.multiaddr),
        () => [],
      )
      // a relayed connection is used as soon as it is up
      return await dialAllPaths(this.#libp2p, id, [...addrs, ...stored], {
        signal: signal ?? AbortSignal.timeout(this.#timeoutMs),
      })
    } catch (err) {
      if (isWarrenError(err)) throw err
      throw new WarrenError(
        'ERR_DIAL_FAILED',
        `could not connect to node ${id}: ${dialErrorText(err, this.#timeoutMs)}`,
        {
          hint: 'Check that its daemon runs (`warren up`) and that one of its addresses is reachable from here.',
          details: { peer: id.toString(), addrs: addrs.map(String) },
          cause: err,
        },
      )
    }
  }

  async #hasStoredAddrs(id: PeerId): Promise<boolean> {
    try {
      return (await this.#libp2p.peerStore.get(id)).addresses.length > 0
    } catch {
      return false
    }
  }
}

function dialErrorText(err: unknown, timeoutMs: number): string {
  const e = err as Error & { errors?: Error[] }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs} ms`
  const inner = e.errors?.map((x) => x.message).filter((m) => m !== '') ?? []
  return inner.length > 0 ? [...new Set(inner)].join('; ') : e.message
}
