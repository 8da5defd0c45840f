/**
 * Connecting to a node by name: resolve the alias, id or ticket, reuse an open connection (direct preferred), else
 * ask the discovery sources for addresses and dial every known path at once (direct addresses and each relay), with
 * one fresh lookup after a failed dial.
 *
 * @example
 * ```ts
 * const dialer = new Dialer(libp2p, addressBook, discovery, { dialTimeoutMs: 10_000 })
 * const conn = await dialer.connect('laptop')
 * ```
 */
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Discovery } from '../../discovery/discovery.ts'
import { isWarrenError, WarrenError } from '../../errors.ts'
import type { AddressBook } from '../../identity/address-book.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { bestConnection } from '../../p2p/path.ts'
import { dialAllPaths } from '../../relay/client/parallel-dial.ts'

export class Dialer {
  readonly #libp2p: WarrenLibp2p
  readonly #book: AddressBook
  readonly #discovery: Discovery
  readonly #timeoutMs: number

  constructor(libp2p: WarrenLibp2p, book: AddressBook, discovery: Discovery, opts: { dialTimeoutMs: number }) {
    this.#libp2p = libp2p
    this.#book = book
    this.#discovery = discovery
    this.#timeoutMs = opts.dialTimeoutMs
  }

  /** Resolves and connects, reusing an open connection (direct preferred). */
  async connect(
    node: string,
    opts: { addrs?: string[]; signal?: AbortSignal; allowNewAddresses?: boolean } = {},
  ): Promise<Connection> {
    const target = this.#book.resolve(
      node,
      opts.addrs,
      opts.allowNewAddresses === false ? { allowNewAddresses: false } : {},
    )
    if (target.id.equals(this.#libp2p.peerId)) {
      throw new WarrenError('ERR_DIAL_FAILED', `${node} is this node itself`, {
        hint: 'Reach local services directly at their target address.',
      })
    }
    const existing = bestConnection(this.#libp2p.getConnections(target.id))
    if (existing !== undefined) return existing
    const stored = await this.#hasStoredAddrs(target.id)
    const dial = (addrs: Multiaddr[]): Promise<Connection> => this.#dial(target.id, addrs, opts.signal)
    return this.#discovery.connect(target, dial, { stored, ...(opts.signal ? { signal: opts.signal } : {}) })
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
