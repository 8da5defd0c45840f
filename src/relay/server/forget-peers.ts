/**
 * The relay forgets the nodes that left. js-libp2p keeps a peer-store entry (protocols, agent version, addresses
 * from identify) for every peer that ever connected, for good: with nodes coming and going, a relay's memory grew
 * with every node it had ever seen. When a peer's last connection closes, its entry is deleted unless the peer is in
 * the DHT's routing table (other relays and public nodes, whose addresses the DHT needs after they disconnect).
 *
 * @example
 * ```ts
 * const forget = forgetDisconnectedPeers(libp2p)
 * // …
 * forget.stop()
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { WarrenLibp2p } from '../../p2p/create.ts'

interface RoutingTableFind {
  routingTable?: { find?: (peer: PeerId) => Promise<PeerId | undefined> }
}

export interface ForgetPeers {
  /** Peer-store entries deleted since the start. */
  readonly forgotten: number
  stop(): void
}

export function forgetDisconnectedPeers(
  libp2p: Pick<WarrenLibp2p, 'addEventListener' | 'removeEventListener' | 'getConnections' | 'peerStore' | 'services'>,
): ForgetPeers {
  let forgotten = 0
  const forget = async (peer: PeerId): Promise<void> => {
    if (libp2p.getConnections(peer).length > 0) return
    const table = (libp2p.services.dht as RoutingTableFind | undefined)?.routingTable
    if ((await table?.find?.(peer)) !== undefined) return
    // it may have come back while the routing table was asked
    if (libp2p.getConnections(peer).length > 0 || !(await libp2p.peerStore.has(peer))) return
    await libp2p.peerStore.delete(peer)
    forgotten++
  }
  const onDisconnect = (evt: CustomEvent<PeerId>): void => {
    void forget(evt.detail).catch(() => {})
  }
  libp2p.addEventListener('peer:disconnect', onDisconnect)
  return {
    get forgotten() {
      return forgotten
    },
    stop: () => libp2p.removeEventListener('peer:disconnect', onDisconnect),
  }
}
