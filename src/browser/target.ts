/**
 * Where a browser can reach a node: a ticket's WebSocket and relay addresses, the browser's own relays (a node
 * reserved there is reachable by id alone), and the addresses a relay's Delegated Routing endpoint knows.
 * A browser dials only WebSocket addresses and circuits through relays it can reach over WebSocket.
 */
import type { PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'
import { looksLikeNodeId, parseNodeId } from '../identity/node-id.ts'
import { decodeTicket, looksLikeTicket } from '../identity/ticket.ts'

const P2P = 421
const CIRCUIT = 290

export interface ParsedTarget {
  id: PeerId
  /** The ticket's addresses (none for a bare id). */
  addrs: Multiaddr[]
}

/** A node id or a ticket; ERR_BAD_TICKET / ERR_BAD_NODE_ID / ERR_UNKNOWN_PEER for anything else. */
export function parseTarget(text: string): ParsedTarget {
  const t = text.trim()
  if (looksLikeTicket(t)) return decodeTicket(t)
  if (looksLikeNodeId(t)) return { id: parseNodeId(t), addrs: [] }
  throw new WarrenError('ERR_UNKNOWN_PEER', `"${t.slice(0, 80)}" is neither a node id nor a ticket`, {
    hint: 'Give the node id (12D3KooW…) or the ticket (warren…) that `warren id` prints on that node.',
  })
}

/** Whether a browser can open this address itself: WebSocket, plain or secure. */
export function isWebSocket(ma: Multiaddr): boolean {
  const names = ma.getComponents().map((c) => c.name)
  return names.includes('ws') || names.includes('wss') || (names.includes('tls') && names.includes('ws'))
}

/** The relay id of a `<relay>/p2p/<id>/p2p-circuit…` address, or undefined. */
function relayOf(ma: Multiaddr): string | undefined {
  const parts = ma.getComponents()
  const at = parts.findIndex((c) => c.code === CIRCUIT)
  if (at < 1) return undefined
  const before = parts[at - 1]!
  return before.code === P2P ? before.value : undefined
}

/**
 * The addresses to dial `id` at, best first: circuits through the relays this browser is connected to (`relays`:
 * relay id → its WebSocket address with /p2p/<id>), then the given addresses a browser can open itself.
 */
export function dialAddrs(id: PeerId, given: Multiaddr[], relays: ReadonlyMap<string, Multiaddr>): Multiaddr[] {
  const out = new Map<string, Multiaddr>()
  const add = (ma: Multiaddr): void => {
    const full = ma.getComponents().some((c) => c.code === P2P && c.value === id.toString())
      ? ma
      : ma.encapsulate(`/p2p/${id}`)
    out.set(full.toString(), full)
  }
  const viaRelay = (relay: string): void => {
    const addr = relays.get(relay)
    if (addr !== undefined) add(addr.encapsulate('/p2p-circuit'))
  }
  for (const ma of given) {
    const relay = relayOf(ma)
    if (relay !== undefined) viaRelay(relay)
  }
  for (const relay of relays.keys()) viaRelay(relay)
  for (const ma of given) {
    const relay = relayOf(ma)
    if (relay === undefined ? isWebSocket(ma) : isWebSocket(ma) && !relays.has(relay)) add(ma)
  }
  return [...out.values()]
}

/** Parses relay addresses for a browser: WebSocket multiaddrs ending in /p2p/<relay id>. */
export function parseRelays(relays: readonly string[]): Map<string, Multiaddr> {
  const out = new Map<string, Multiaddr>()
  for (const text of relays) {
    let ma: Multiaddr
    try {
      ma = multiaddr(text)
    } catch (err) {
      throw new WarrenError(
        'ERR_BAD_ADDRESS',
        `relay address "${text}" is not a multiaddr: ${(err as Error).message}`,
        {
          hint: 'Copy the /ws or /wss address from `warren relay status` on the relay.',
        },
      )
    }
    const last = ma.getComponents().at(-1)
    if (!isWebSocket(ma) || last?.code !== P2P || last.value === undefined) {
      throw new WarrenError(
        'ERR_BAD_ADDRESS',
        `relay address "${text}" is not a WebSocket address ending in /p2p/<relay id>`,
        {
          hint: "A browser reaches relays over WebSocket: use the relay's /ws or /wss address with its /p2p/<id>, as `warren relay status` prints it.",
        },
      )
    }
    out.set(last.value, ma)
  }
  if (out.size === 0) {
    throw new WarrenError('ERR_RELAY_UNREACHABLE', 'no relays given', {
      hint: 'Pass at least one relay: startBrowserNode({ relays: ["/dns4/relay.example/tcp/443/wss/p2p/12D3KooW…"] }).',
    })
  }
  return out
}

interface RoutingAnswer {
  Peers?: { ID?: string; Addrs?: string[] }[]
}

/** Asks each Delegated Routing endpoint (`https://relay.example`) in turn for the addresses of `id`. */
export async function lookupVia(urls: readonly string[], id: PeerId, signal?: AbortSignal): Promise<Multiaddr[]> {
  const problems: string[] = []
  for (const base of urls) {
    try {
      const res = await fetch(`${base.replace(/\/+$/, '')}/routing/v1/peers/${id}`, {
        headers: { Accept: 'application/json' },
        signal: signal ?? AbortSignal.timeout(10_000),
      })
      if (!res.ok) {
        problems.push(`${base}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`)
        continue
      }
      const body = (await res.json()) as RoutingAnswer
      const addrs = (body.Peers ?? [])
        .filter((p) => p.ID === id.toString())
        .flatMap((p) => p.Addrs ?? [])
        .flatMap((a) => {
          try {
            return [multiaddr(a)]
          } catch {
            return []
          }
        })
      if (addrs.length > 0) return addrs
      problems.push(`${base}: no addresses`)
    } catch (err) {
      problems.push(`${base}: ${(err as Error).message}`)
    }
  }
  throw new WarrenError(
    'ERR_LOOKUP_FAILED',
    `no routing endpoint knows node ${id} (${problems.join('; ') || 'none configured'})`,
    {
      hint:
        urls.length === 0
          ? 'Pass routing: ["https://<relay>"] to startBrowserNode (a relay started with --routing serves it).'
          : 'The node may be offline, or reserved on another relay: use its ticket instead of its id.',
      details: { node: id.toString() },
    },
  )
}
