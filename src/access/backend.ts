/**
 * The access port's view of a node: name resolution, service streams, and the one per-node stream limit
 * (`proxy.maxStreamsPerPeer`) shared by everything the access port carries — gateway and HTTP proxy requests
 * (full and fast path), HTTP CONNECT and SOCKS5 tunnels, WebSockets.
 *
 * @example
 * ```ts
 * const backend = new AccessBackend(node, { maxStreamsPerPeer: 256 })
 * const { id } = backend.resolveNode('laptop')
 * const release = backend.acquire(id)          // throws ERR_TOO_MANY_STREAMS past the limit
 * const stream = await backend.openService(id, 'web', { signal: AbortSignal.timeout(20_000), port: 443 })
 * ```
 */
import type { Stream } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'
import type { GatewayBackend, NodeIds } from '../gateway/backend.ts'
import type { AddressBook, ResolvedNode } from '../identity/address-book.ts'
import { formatNodeIdBase36 } from '../identity/node-id.ts'
import { StreamLimiter } from '../services/limiter.ts'

export interface NodeForAccess {
  readonly addressBook: AddressBook
  /** A node given as the address book resolved it is not resolved again. */
  /** `port`: the port the local client connected to, for the request header. */
  openService(
    node: string | ResolvedNode,
    service: string,
    opts?: { signal?: AbortSignal; port?: number },
  ): Promise<Stream>
}

/** Resolved names are kept this long: parsing ids on every request costs more than the request's own work. */
const RESOLVE_TTL_MS = 5_000
const RESOLVE_CACHE_MAX = 1_024

export class AccessBackend implements GatewayBackend {
  readonly #node: NodeForAccess
  readonly #maxStreamsPerPeer: number
  readonly #limiter: StreamLimiter
  /** Name → ids, for RESOLVE_TTL_MS. */
  readonly #resolved = new Map<string, { ids: NodeIds; until: number }>()
  /** Node id (base58) → the node as resolved, so that opening a stream resolves nothing again. */
  readonly #targets = new Map<string, ResolvedNode>()

  constructor(node: NodeForAccess, opts: { maxStreamsPerPeer: number }) {
    this.#node = node
    this.#maxStreamsPerPeer = opts.maxStreamsPerPeer
    this.#limiter = new StreamLimiter(Number.MAX_SAFE_INTEGER, opts.maxStreamsPerPeer)
  }

  resolveNode(name: string, opts?: { learn?: boolean }): NodeIds {
    const now = Date.now()
    const hit = this.#resolved.get(name)
    if (hit !== undefined && hit.until > now) return hit.ids
    // learn: false (browser requests): a ticket with addresses not known yet throws ERR_UNKNOWN_ADDRESSES, and
    // only known or configured (alias) addresses are used
    const resolved = this.#node.addressBook.resolve(name, [], opts?.learn === false ? { allowNewAddresses: false } : {})
    const ids = { id: resolved.id.toString(), base36: formatNodeIdBase36(resolved.id) }
    if (this.#resolved.size >= RESOLVE_CACHE_MAX) {
      this.#resolved.clear()
      this.#targets.clear()
    }
    this.#resolved.set(name, { ids, until: now + RESOLVE_TTL_MS })
    this.#targets.set(ids.id, resolved)
    return ids
  }

  /** `opts.port`, when given, travels in the request header (the port a captured connection was made to). */
  openService(node: string, service: string, opts: { signal: AbortSignal; port?: number }): Promise<Stream> {
    return this.#node.openService(this.#targets.get(node) ?? node, service, opts)
  }

  acquire(node: string): () => void {
    const release = this.#limiter.acquire(node)
    if (typeof release === 'string') {
      throw new WarrenError(
        'ERR_TOO_MANY_STREAMS',
        `the access port already has ${this.#maxStreamsPerPeer} streams open to node ${node}`,
        {
          hint: 'Retry when some requests have finished, or raise proxy.maxStreamsPerPeer.',
          details: { peer: node },
        },
      )
    }
    return release
  }
}
