/**
 * Warren's Kademlia DHT: js-libp2p's `@libp2p/kad-dht` on Warren's own protocol id, so that Warren nodes never mix
 * with the IPFS Amino DHT, with the validator and selector of Warren's signed peer records.
 *
 * - Mode: relays are always DHT servers (they are the bootstrap nodes); a node is a server when libp2p detects a
 *   public address among its own (`auto`, js-libp2p's rule: any address that is neither private nor a relay
 *   circuit), else a client, which asks the DHT but is not asked.
 * - Addresses: like js-libp2p, Warren drops private addresses (RFC 1918, loopback, 100.64/10, 198.18/15 …) from the
 *   peers it learns and answers about through the DHT, because nobody elsewhere can dial them. `privateAddresses`
 *   keeps them, for a Warren network inside one LAN or a test lab (see docs/discovery.md).
 *
 * @example
 * ```ts
 * const services = { dht: warrenDht({ mode: 'auto', privateAddresses: false }) }
 * ```
 */
import { type KadDHT, type KadDHTInit, kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { RECORD_NAMESPACE, selectPeerRecord, validatePeerRecord } from './peer-record.ts'

/** How a node takes part in the DHT: `server` answers queries, `client` only asks, `auto` decides from reachability. */
export type DhtMode = 'auto' | 'server' | 'client'

export const DHT_PROTOCOL = '/warren/kad/1.0.0'

export interface WarrenDhtOptions {
  mode: DhtMode
  privateAddresses: boolean
}

/** kad-dht settings for Warren (exported for tests). */
export function warrenDhtInit(opts: WarrenDhtOptions): KadDHTInit {
  const init: KadDHTInit = {
    protocol: DHT_PROTOCOL,
    logPrefix: 'warren:dht',
    peerInfoMapper: opts.privateAddresses ? passthroughMapper : removePrivateAddressesMapper,
    validators: { [RECORD_NAMESPACE]: (key, value) => validatePeerRecord(key, value) },
    selectors: { [RECORD_NAMESPACE]: selectPeerRecord },
    // queries run at once, with the servers known then (a relay alone answers from its own store; a node with no
    // server known is told so by Warren without a query)
    allowQueryWithZeroPeers: true,
    initialQuerySelfInterval: 100,
    // Warren publishes records, not provider records: nothing to re-provide
    reprovide: { interval: 24 * 60 * 60 * 1000 },
  }
  // absent: js-libp2p switches between client and server as its addresses become public or not
  if (opts.mode !== 'auto') init.clientMode = opts.mode === 'client'
  return init
}

export function warrenDht(opts: WarrenDhtOptions): ReturnType<typeof kadDHT> {
  return kadDHT(warrenDhtInit(opts))
}

/** The DHT with the parts Warren reads (the routing table is on js-libp2p's single-DHT class). */
export type WarrenKadDHT = KadDHT & { routingTable?: { size: number } }

/** Peers in the routing table (DHT servers this node knows). */
export function routingTableSize(dht: WarrenKadDHT): number {
  return dht.routingTable?.size ?? 0
}
