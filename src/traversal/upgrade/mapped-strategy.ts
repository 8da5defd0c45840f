/**
 * The router-mapped phase of a direct-path upgrade, run before any punching: when a node's router mapped a port for it
 * (PCP, NAT-PMP or UPnP IGD, src/traversal/portmap), its offer or answer lists those public addresses (`portmap`), and
 * the other node dials them plainly, as it would any public address. No STUN timing, no probes, no birthday: the
 * mapping lets the first packet in. The side that dials is the initiator when the responder has mapped addresses,
 * else the responder. It reports `direct` with the address that connected, or `unmapped` when none did (a stale
 * mapping, a router that filters anyway), and then both sides punch as without mappings.
 *
 * @packageDocumentation
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../../errors.ts'
import { isRelayed } from '../../p2p/path.ts'
import { type Attempt, noPathBecause, type Reached } from './strategy.ts'
import { waitForConnection } from './wait-connection.ts'

/** Bound on one plain dial of a mapped address, ms. */
export const MAPPED_DIAL_MS = 2500

/** Whether this side dials the peer's mapped addresses (both sides agree from the same two lists). */
export function mappedDialer(initiator: boolean, mine: readonly string[], theirs: readonly string[]): boolean {
  return theirs.length > 0 && (initiator || mine.length === 0)
}

/**
 * Runs the mapped phase: resolves with the direct connection, or undefined when there is nothing to dial or no mapped
 * address answered (punching follows). Rejects when the peer ended the attempt (`failed`).
 */
export async function mappedPhase(
  a: Attempt & { initiator: boolean; portmap: readonly string[] },
): Promise<(Reached & { addr: string }) | undefined> {
  const mine = a.portmap
  const theirs = a.remote.portmap ?? []
  if (mine.length === 0 && theirs.length === 0) return undefined
  if (mappedDialer(a.initiator, mine, theirs)) {
    const errors: string[] = []
    for (const addr of theirs) {
      try {
        const connection = await dialMapped(a.node, a.remotePeer, addr, a.signal)
        await a.chan.send({ type: 'direct', addr })
        a.opts.log?.('debug', `direct path to ${a.remotePeer} through its router's mapping ${addr}`)
        return { connection, remote: endpointOf(connection), addr }
      } catch (err) {
        errors.push(`${addr}: ${(err as Error).message}`)
      }
    }
    const reason = `no mapped address answered (${errors.join('; ')})`
    a.opts.log?.('debug', `${reason}; punching ${a.remotePeer}`)
    await a.chan.send({ type: 'unmapped', reason })
    return undefined
  }
  // the peer dials one of our mapped addresses
  const msg = await a.chan.next()
  if (msg.type === 'unmapped') return undefined
  if (msg.type === 'failed') throw noPathBecause(msg.reason, a.remotePeer)
  if (msg.type !== 'direct') {
    throw new WarrenError('ERR_PROTOCOL', `expected 'direct' or 'unmapped' from the peer, got '${msg.type}'`, {
      hint: 'The peer runs an incompatible Warren version; upgrade both nodes.',
    })
  }
  const connection = await waitForConnection(a.node, a.remotePeer, (c) => !isRelayed(c), a.signal)
  return { connection, remote: endpointOf(connection), addr: msg.addr }
}

async function dialMapped(node: Libp2p, peer: PeerId, addr: string, signal: AbortSignal): Promise<Connection> {
  // no /p2p/ part (see udx-strategy.ts): the identity is checked below
  const connection = await node.dial(multiaddr(addr), {
    signal: AbortSignal.any([signal, AbortSignal.timeout(MAPPED_DIAL_MS)]),
    force: true,
  })
  if (!connection.remotePeer.equals(peer)) {
    await connection.close()
    throw new Error(`the node at ${addr} is ${connection.remotePeer}, not ${peer}`)
  }
  return connection
}

/** host and port of a connection's far end. */
function endpointOf(conn: Connection): { host: string; port: number } {
  const parts = conn.remoteAddr.getComponents()
  return { host: parts[0]?.value ?? '', port: Number(parts[1]?.value ?? 0) }
}
