/**
 * Turns what a user types for a node — a `peers` alias, a node id in either form, or a ticket — into a node id
 * and addresses, and remembers addresses learned from tickets and `--addr`.
 *
 * What it learns is bounded: at most {@link MAX_LEARNED_PEERS} nodes (least recently used first out; nodes named in
 * `peers` are never evicted) and {@link MAX_ADDRS_PER_PEER} addresses each, so that a stream of distinct tickets —
 * a web page can make a browser send thousands through the gateway — cannot grow memory or state.json.
 */
import type { PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'
import { looksLikeNodeId, parseNodeId } from './node-id.ts'
import { decodeTicket, looksLikeTicket } from './ticket.ts'

/** Learned nodes kept at most; the least recently used beyond it is forgotten. */
export const MAX_LEARNED_PEERS = 1_024
/** Addresses kept per learned node (a ticket carries at most 64); the newest win. */
export const MAX_ADDRS_PER_PEER = 64

export interface ResolveOptions {
  /** Remember the addresses the name carries (default true). */
  learn?: boolean
  /**
   * false: refuse (ERR_UNKNOWN_ADDRESSES) a ticket or extra address this node does not already know, so that the
   * caller never makes the node dial an address it was handed by someone else (the gateway for browser-originated
   * requests). Node ids and aliases resolve as usual. Implies `learn: false`. Default true.
   */
  allowNewAddresses?: boolean
}

export interface AddressBookOptions {
  /** Default {@link MAX_LEARNED_PEERS}. */
  maxLearned?: number
  /** Called with a node id forgotten to make room, so its other traces (the libp2p peer store) can go too. */
  onEvict?: (id: string) => void
}

export interface ResolvedNode {
  id: PeerId
  addrs: Multiaddr[]
  /** The alias it was found under, if any. */
  alias?: string
}

/** Parses `--addr` values, with the error naming the bad one. */
export function parseAddrs(addrs: readonly string[] = []): Multiaddr[] {
  return addrs.map((a) => {
    try {
      return multiaddr(a)
    } catch (err) {
      throw new WarrenError('ERR_BAD_ADDRESS', `"${a}" is not a valid multiaddr (${(err as Error).message})`, {
        hint: 'Write addresses like /ip4/192.0.2.7/tcp/4781.',
      })
    }
  })
}

/** Removes a trailing `/p2p/<id>` so addresses are stored bare. */
function bare(a: Multiaddr, id: PeerId): Multiaddr {
  const s = a.toString()
  const suffix = `/p2p/${id.toString()}`
  return s.endsWith(suffix) ? multiaddr(s.slice(0, -suffix.length)) : a
}

/** Decoded tickets an address book keeps (each decode checks a SHA-256 checksum and parses every address). */
const TICKETS_KEPT = 64

export class AddressBook {
  #peers: Record<string, string>
  /** Addresses learned from tickets and --addr, by base58 id; in order of last use (Map order), oldest first. */
  readonly #learned = new Map<string, Set<string>>()
  readonly #max: number
  readonly #onEvict: ((id: string) => void) | undefined
  /** Node ids named in `peers`: never evicted. */
  #pinned = new Set<string>()

  constructor(
    peers: Record<string, string> = {},
    learned: Record<string, string[]> = {},
    opts: AddressBookOptions = {},
  ) {
    this.#peers = peers
    this.#max = opts.maxLearned ?? MAX_LEARNED_PEERS
    this.#onEvict = opts.onEvict
    this.#pinned = this.#pinnedIds()
    for (const [id, addrs] of Object.entries(learned)) this.#learned.set(id, new Set(addrs.slice(-MAX_ADDRS_PER_PEER)))
    this.#evict()
  }

  setPeers(peers: Record<string, string>): void {
    this.#peers = peers
    this.#pinned = this.#pinnedIds()
  }

  /** Nodes with learned addresses held now, those in `peers` included (for status and tests). */
  get size(): number {
    return this.#learned.size
  }

  #pinnedIds(): Set<string> {
    return new Set(this.peerIds().map(String))
  }

  /** Forgets the least recently used learned nodes beyond the bound; nodes named in `peers` neither count nor go. */
  #evict(): void {
    let pinned = 0
    for (const id of this.#pinned) if (this.#learned.has(id)) pinned++
    let over = this.#learned.size - pinned - this.#max
    if (over <= 0) return
    for (const id of this.#learned.keys()) {
      if (over <= 0) break
      if (this.#pinned.has(id)) continue
      this.#learned.delete(id)
      over--
      this.#onEvict?.(id)
    }
  }

  /** Whether every address in `addrs` is known for `id` (from `peers` tickets or learned). */
  #allKnown(id: PeerId, addrs: readonly Multiaddr[], configured: readonly Multiaddr[]): boolean {
    const known = new Set([
      ...(this.#learned.get(id.toString()) ?? []),
      ...configured.map((a) => bare(a, id).toString()),
    ])
    return addrs.every((a) => known.has(bare(a, id).toString()))
  }

  /** Aliases that name `id`. */
  aliasesOf(id: string): string[] {
    return Object.entries(this.#peers)
      .filter(([, ref]) => {
        try {
          return this.#refToNode(ref).id.toString() === id
        } catch {
          return false
        }
      })
      .map(([alias]) => alias)
  }

  /**
   * Tickets and node ids decoded before (a forward resolves its node for every connection), at most
   * {@link TICKETS_KEPT}.
   */
  readonly #decoded = new Map<string, { id: PeerId; addrs: readonly Multiaddr[] }>()

  #decode(ref: string): { id: PeerId; addrs: readonly Multiaddr[] } {
    let t = this.#decoded.get(ref)
    if (t === undefined) {
      t = looksLikeTicket(ref) ? decodeTicket(ref) : { id: parseNodeId(ref), addrs: [] }
      if (this.#decoded.size >= TICKETS_KEPT) this.#decoded.clear()
      this.#decoded.set(ref, t)
    }
    return t
  }

  #refToNode(ref: string): ResolvedNode {
    const t = this.#decode(ref)
    return { id: t.id, addrs: [...t.addrs] }
  }

  /**
   * The node id `name` (an alias, a node id or a ticket) stands for, without resolving its addresses, and marks the
   * node as used (its learned addresses are the last to be dropped); undefined when `name` is none of these. For a
   * caller that needs no address: one with an open connection to the node.
   */
  idOf(name: string): PeerId | undefined {
    const text = name.trim()
    const ref = this.#peers[text] ?? text
    if (ref === text && !looksLikeTicket(text) && !looksLikeNodeId(text)) return undefined
    let id: PeerId
    try {
      id = this.#decode(ref).id
    } catch {
      return undefined
    }
    const key = id.toString()
    const known = this.#learned.get(key)
    if (known !== undefined) {
      this.#learned.delete(key)
      this.#learned.set(key, known)
    }
    return id
  }

  /** Resolves a name; throws ERR_UNKNOWN_PEER, ERR_BAD_NODE_ID, ERR_BAD_TICKET or ERR_UNKNOWN_ADDRESSES. */
  resolve(name: string, extra: readonly string[] = [], opts: ResolveOptions = {}): ResolvedNode {
    const text = name.trim()
    let node: ResolvedNode
    const aliasRef = this.#peers[text]
    if (aliasRef !== undefined) node = { ...this.#refToNode(aliasRef), alias: text }
    else if (looksLikeTicket(text) || looksLikeNodeId(text)) node = this.#refToNode(text)
    else {
      const known = Object.keys(this.#peers)
      throw new WarrenError('ERR_UNKNOWN_PEER', `"${text}" is not a node id, a ticket, or an alias in peers`, {
        hint:
          known.length > 0
            ? `Known aliases: ${known.join(', ')}. Or use the node's id or ticket from \`warren id\` on that node.`
            : "Use the node's id or ticket from `warren id` on that node, or add an alias under peers in config.json.",
      })
    }
    const extraAddrs = parseAddrs(extra)
    const own = node.addrs
    if (opts.allowNewAddresses === false) {
      const configured = aliasRef === undefined ? [] : node.addrs
      const given = aliasRef === undefined ? [...extraAddrs, ...node.addrs] : extraAddrs
      if (!this.#allKnown(node.id, given, configured)) {
        throw new WarrenError(
          'ERR_UNKNOWN_ADDRESSES',
          `"${shorten(text)}" names addresses of node ${node.id} that this node does not know, and new addresses are not allowed here`,
          {
            hint: 'Use the node id or an alias in peers, or give the ticket to `warren connect`/`warren forward` first so the node learns it.',
            details: { peer: node.id.toString() },
          },
        )
      }
    }
    const key = node.id.toString()
    const known = this.#learned.get(key)
    if (known !== undefined) {
      // used: move to the young end
      this.#learned.delete(key)
      this.#learned.set(key, known)
    }
    const learned = [...(known ?? [])].map((a) => multiaddr(a))
    const all = new Map<string, Multiaddr>()
    for (const a of [...extraAddrs, ...node.addrs, ...learned]) {
      const b = bare(a, node.id)
      all.set(b.toString(), b)
    }
    node.addrs = [...all.values()]
    if (opts.learn !== false && opts.allowNewAddresses !== false) this.remember(node.id, [...own, ...extraAddrs])
    return node
  }

  /** Adds addresses to what is known of `id`. Returns true when something new was learned. */
  remember(id: PeerId, addrs: readonly Multiaddr[]): boolean {
    if (addrs.length === 0) return false
    const key = id.toString()
    const set = this.#learned.get(key) ?? new Set<string>()
    let added = false
    for (const a of addrs) {
      const s = bare(a, id).toString()
      if (!set.delete(s)) added = true // the newest go last, the oldest are dropped past the bound
      set.add(s)
    }
    for (const old of set) {
      if (set.size <= MAX_ADDRS_PER_PEER) break
      set.delete(old)
    }
    this.#learned.delete(key)
    this.#learned.set(key, set)
    this.#evict()
    return added
  }

  /** Everything learned, for persistence. */
  learned(): Record<string, string[]> {
    return Object.fromEntries([...this.#learned].map(([id, set]) => [id, [...set]]))
  }

  /** Node ids named in `peers`. */
  peerIds(): PeerId[] {
    return Object.values(this.#peers).flatMap((ref) => {
      try {
        return [this.#refToNode(ref).id]
      } catch {
        return []
      }
    })
  }
}

/** A ticket shortened for a message. */
function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}…` : text
}
