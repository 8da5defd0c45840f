/**
 * The list of all open connections, built in time proportional to their number. js-libp2p 3's connection manager
 * builds it (`getConnections()` without a peer) by concatenating each peer's connections onto the list so far,
 * which copies that list once per peer: n²/2 element copies for n peers, and as much garbage. libp2p asks for it on
 * every inbound connection (the `maxConnections` check) and on every `connection:open` (the pruner), so a relay
 * taking its 6,000th node copied ~18 million elements for it: in a profile of a relay going from none to 6,000 idle
 * reservations, 18% of its time was that function and 40% garbage collection, and each thousand nodes took longer to
 * admit than the thousand before (docs/performance.md, Idle reservations).
 *
 * {@link linearConnectionList} replaces the method on the connection manager instance with one that pushes each
 * connection once. Same connections, same order, a new array each call as before.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { patchMissed } from './status.ts'

interface ConnectionTable {
  connections?: { get(peer: PeerId): Connection[] | undefined; values(): Iterable<Connection[]> }
  getConnections?: (peer?: PeerId) => Connection[]
}

/** Installs the linear `getConnections` on `connectionManager`; false (and a warning) when its shape is not known. */
export function linearConnectionList(connectionManager: unknown): boolean {
  const cm = connectionManager as ConnectionTable
  const table = cm.connections
  if (
    typeof cm.getConnections !== 'function' ||
    typeof table?.values !== 'function' ||
    typeof table.get !== 'function'
  ) {
    patchMissed('linearConnectionList', "the connection manager has no `connections` map of each peer's connections")
    return false
  }
  cm.getConnections = (peer?: PeerId): Connection[] => {
    if (peer != null) return table.get(peer) ?? []
    const all: Connection[] = []
    for (const list of table.values()) for (const c of list) all.push(c)
    return all
  }
  return true
}
