/**
 * What a node reports about itself and its peers, computed from its parts: its identity and tickets, the peers it
 * knows or is connected to, a ping over a chosen connection (dialled again once when lost), and `warren netcheck`.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { shareableAddrs } from '../discovery/host-local.ts'
import { WarrenError } from '../errors.ts'
import type { AddressBook } from '../identity/address-book.ts'
import { formatNodeId, formatNodeIdBase36 } from '../identity/node-id.ts'
import { encodeTicket } from '../identity/ticket.ts'
import { openPingStream } from '../p2p/conn-ping.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { bestConnection, describePath } from '../p2p/path.ts'
import type { HomeRelay } from '../relay/client/home-relay.ts'
import type { StreamCounters, StreamTally } from '../services/stream-counters.ts'
import type { DirectPaths } from '../traversal/upgrade/direct-paths.ts'
import type { NetcheckResult, NodeIdentity, PeerInfo, PingResult, StreamsSummary } from './types.ts'

const CODE_P2P = 421

/**
 * The id, tickets and addresses of a node; its tickets carry every configured relay's circuit address too, and no
 * loopback or link-local address unless the node has no other (src/discovery/host-local.ts). Addresses a router
 * mapped for the node (`mapped`, port mapping) come first: they need no punching, so a dialler tries them first.
 */
export function identityOf(
  libp2p: WarrenLibp2p,
  homeRelay: HomeRelay | undefined,
  mapped: readonly string[] = [],
): NodeIdentity {
  const own = libp2p.getMultiaddrs().map((a) => a.decapsulateCode(CODE_P2P))
  // every configured relay's circuit address too, so the ticket still works after a move to another relay
  const relayed = homeRelay?.ticketAddrs() ?? []
  const isMapped = new Set(mapped)
  const ordered = [...own.filter((a) => isMapped.has(a.toString())), ...own.filter((a) => !isMapped.has(a.toString()))]
  const all = [...new Map([...ordered, ...relayed].map((a) => [a.toString(), a])).values()]
  const addrs = shareableAddrs(all, relayed.map(String))
  return {
    id: formatNodeId(libp2p.peerId),
    idBase36: formatNodeIdBase36(libp2p.peerId),
    ticket: encodeTicket({ id: libp2p.peerId, addrs }),
    shortTicket: encodeTicket({ id: libp2p.peerId, addrs: relayed.slice(0, 1) }),
    addrs: addrs.map(String),
  }
}

/** Nodes in the address book and nodes connected now, with their path and latest upgrade attempt. */
export function peersOf(libp2p: WarrenLibp2p, book: AddressBook, directPaths: DirectPaths | undefined): PeerInfo[] {
  const ids = new Map<string, PeerId>()
  for (const id of book.peerIds()) ids.set(id.toString(), id)
  for (const c of libp2p.getConnections()) ids.set(c.remotePeer.toString(), c.remotePeer)
  const learned = book.learned()
  return [...ids.values()].map((id) => {
    const conn = bestConnection(libp2p.getConnections(id))
    const info: PeerInfo = {
      id: id.toString(),
      aliases: book.aliasesOf(id.toString()),
      connected: conn !== undefined,
      addrs: learned[id.toString()] ?? [],
    }
    if (conn !== undefined) info.path = describePath(conn)
    const upgrade = directPaths?.status()[id.toString()]
    if (upgrade !== undefined) info.upgrade = upgrade
    return info
  })
}

/**
 * One ping on `conn` (the direct one when there is one), so that the path printed is the path timed; also over a
 * relayed connection with limits, which libp2p's ping by peer id would not use. Throws ERR_TIMEOUT.
 */
export async function pingOver(conn: Connection): Promise<PingResult> {
  try {
    const pinger = await openPingStream(conn, 10_000)
    try {
      return { id: conn.remotePeer.toString(), rttMs: await pinger.once(), path: describePath(conn) }
    } finally {
      await pinger.close()
    }
  } catch (err) {
    throw new WarrenError('ERR_TIMEOUT', `ping to ${conn.remotePeer} failed: ${(err as Error).message}`, {
      cause: err,
    })
  }
}

/**
 * One ping over the connection `connect` gives; a connection replaced or pruned under the ping (the ping never reached
 * the node) is dialled again, once.
 */
export async function pingNode(connect: () => Promise<Connection>): Promise<PingResult> {
  const conn = await connect()
  try {
    return await pingOver(conn)
  } catch (err) {
    const lost = (err as { cause?: { code?: unknown } }).cause?.code === 'ERR_CONNECTION_LOST'
    if (!lost && conn.status === 'open') throw err
    return pingOver(await connect())
  }
}

/** UDP reachability and NAT behaviour as the relays' STUN responders see it; ERR_NO_DIRECT_PATH when traversal is off. */
export async function netcheckOf(
  directPaths: DirectPaths | undefined,
  homeRelay: HomeRelay | undefined,
): Promise<NetcheckResult> {
  if (directPaths === undefined) {
    throw new WarrenError('ERR_NO_DIRECT_PATH', 'direct paths are off (traversal.enabled is false)', {
      hint: 'Set "traversal": { "enabled": true } in config.json.',
    })
  }
  const report = await directPaths.netcheck()
  const relay = homeRelay?.status()
  return {
    ...report,
    home: relay?.home ?? null,
    relays: (relay?.relays ?? []).map(({ id, addr, state, rttMs }) =>
      rttMs === undefined ? { id, addr, state } : { id, addr, state, rttMs },
    ),
  }
}

/** Streams that opened: open now plus those that ended after opening (not refused, failed or unreachable). */
function openedOf(t: StreamTally): number {
  const e = t.ends
  return t.open + (e.ok ?? 0) + (e.reset ?? 0) + (e.error ?? 0) + (e.revoked ?? 0)
}

/**
 * The `streams` line of `warren status`: the host's own figures for incoming streams (they include streams still
 * connecting to their target) and the counters' for outgoing ones; `traffic` carries the rest.
 */
export function streamsOf(host: { active: number; total: number }, counters: StreamCounters): StreamsSummary {
  const out = counters.snapshot().outgoing.total
  const outgoing = { active: out.open, total: openedOf(out) }
  return {
    active: host.active + outgoing.active,
    total: host.total + outgoing.total,
    incoming: host,
    outgoing,
  }
}
