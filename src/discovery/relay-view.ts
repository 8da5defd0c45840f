/**
 * What a relay knows about a peer, for its Delegated Routing V1 answers: the peer's signed record from the DHT (the
 * relay's own store first, then the network), a circuit address through this relay when the peer holds a
 * reservation here, and the addresses the peer told this relay (identify) while connected. Loopback and link-local
 * addresses are left out (src/discovery/host-local.ts): the browsers asking run on other hosts.
 */
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { publishableAddrs } from '../p2p/peer-record.ts'
import { findPeerRecord } from './dht-lookup.ts'
import { shareableAddrs } from './host-local.ts'
import type { RoutingPeer } from './routing-http.ts'

export interface RelayViewOptions {
  libp2p: WarrenLibp2p
  /** Node ids holding a reservation on this relay now. */
  reserved(): Iterable<string>
  privateAddresses: boolean
}

export function relayPeerFinder(opts: RelayViewOptions): (id: PeerId, signal: AbortSignal) => Promise<RoutingPeer[]> {
  const { libp2p } = opts
  return async (id, signal) => {
    const found: string[] = []
    const key = id.toString()
    if ([...opts.reserved()].includes(key)) {
      for (const a of publishableAddrs(shareableAddrs(libp2p.getMultiaddrs()), opts.privateAddresses)) {
        if (!a.toString().includes('/p2p-circuit')) found.push(`${a}/p2p-circuit`)
      }
    }
    if (libp2p.getConnections(id).some((c) => c.status === 'open')) {
      const known = await libp2p.peerStore.get(id).then(
        (p) => p.addresses.map((a) => a.multiaddr),
        () => [],
      )
      for (const a of publishableAddrs(shareableAddrs(known), opts.privateAddresses)) found.push(a.toString())
    }
    const dht = libp2p.services.dht
    if (dht !== undefined && !id.equals(libp2p.peerId)) {
      const search = await findPeerRecord(dht, id, signal).catch(() => undefined)
      if (search !== undefined && 'record' in search) {
        for (const a of publishableAddrs(shareableAddrs(search.record.addrs), opts.privateAddresses))
          found.push(a.toString())
      }
    }
    const addrs = [...new Set(found.map((a) => multiaddr(a).toString()))]
    return addrs.length === 0 ? [] : [{ Schema: 'peer', ID: key, Addrs: addrs }]
  }
}
