/**
 * Turns what a user types for a node — a `peers` alias, a node id in either form, or a ticket — into a node id
 * and addresses, and remembers addresses learned from tickets and `--addr`.
 */
import type { PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'
import { looksLikeNodeId, parseNodeId } from '../identity/node-id.ts'
import { decodeTicket, looksLikeTicket } from '../identity/ticket.ts'

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

export class AddressBook {
  #peers: Record<string, string>
  /** Addresses learned from tickets and --addr, by base58 id. */
  readonly #learned = new Map<string, Set<string>>()

  constructor(peers: Record<string, string> = {}, learned: Record<string, string[]> = {}) {
    this.#peers = peers
    for (const [id, addrs] of Object.entries(learned)) this.#learned.set(id, new Set(addrs))
  }

  setPeers(peers: Record<string, string>): void {
    this.#peers = peers
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

  #refToNode(ref: string): ResolvedNode {
    if (looksLikeTicket(ref)) {
      const t = decodeTicket(ref)
      return { id: t.id, addrs: t.addrs }
    }
    return { id: parseNodeId(ref), addrs: [] }
  }

  /** Resolves a name; throws ERR_UNKNOWN_PEER, ERR_BAD_NODE_ID or ERR_BAD_TICKET. */
  resolve(name: string, extra: readonly string[] = []): ResolvedNode {
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
    const learned = [...(this.#learned.get(node.id.toString()) ?? [])].map((a) => multiaddr(a))
    const all = new Map<string, Multiaddr>()
    for (const a of [...extraAddrs, ...node.addrs, ...learned]) {
      const b = bare(a, node.id)
      all.set(b.toString(), b)
    }
    node.addrs = [...all.values()]
    this.remember(node.id, [...extraAddrs, ...node.addrs])
    return node
  }

  /** Adds addresses to what is known of `id`. Returns true when something new was learned. */
  remember(id: PeerId, addrs: readonly Multiaddr[]): boolean {
    if (addrs.length === 0) return false
    const key = id.toString()
    const set = this.#learned.get(key) ?? new Set<string>()
    const before = set.size
    for (const a of addrs) set.add(bare(a, id).toString())
    this.#learned.set(key, set)
    return set.size !== before
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
