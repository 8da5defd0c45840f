/**
 * The libp2p node under a {@link WarrenNode} (src/node/warren-node.ts), started: its listen addresses (the UDP ones
 * too when traversal is on), the connection gate that keeps known nodes apart from strangers, the connection cap
 * (the preset's plus the strangers' budget) and the discovery services the config asks for.
 */
import { Discovery } from '../discovery/discovery.ts'
import { createNode, type WarrenLibp2p } from '../p2p/create.ts'
import { PRESETS } from '../p2p/presets.ts'
import { UdxHub } from '../p2p/udx/transport.ts'
import { streamsPerConnection } from '../services/host.ts'
import type { WarrenNodeStartOptions } from './api.ts'
import { KnownPeers, knownIdsOf } from './known-peers.ts'
import { StrangerGate } from './stranger-gate.ts'

export interface NodeLibp2p {
  libp2p: WarrenLibp2p
  /** Nodes named in `peers`, an allow list or `relays`. */
  known: KnownPeers
  /** The connection budget of all other nodes. */
  strangers: StrangerGate
  /** The UDP sockets of direct paths; undefined when traversal is off. */
  udxHub: UdxHub | undefined
}

/** Creates and starts the libp2p node for `opts`; throws ERR_LISTEN_FAILED (src/p2p/create.ts). */
export async function createNodeLibp2p(opts: WarrenNodeStartOptions): Promise<NodeLibp2p> {
  const traversal = opts.config.traversal.enabled
  const udxHub = traversal ? new UdxHub() : undefined
  const udpListen =
    opts.udpListen ?? (opts.preset === 'test' ? ['/ip4/127.0.0.1/udp/0'] : opts.config.traversal.udpListen)
  const known = new KnownPeers(knownIdsOf(opts.config))
  const strangers = new StrangerGate(opts.config.limits, opts.log)
  strangers.setKnown((id) => known.has(id))
  const libp2p = await createNode({
    privateKey: opts.privateKey,
    listen: [...(opts.listen ?? opts.config.listen), ...(traversal ? udpListen : [])],
    announce: opts.config.announce,
    preset: opts.preset ?? 'default',
    connectionGater: strangers.gater(),
    maxConnections: PRESETS[opts.preset ?? 'default'].maxConnections + opts.config.limits.maxStrangerConnections,
    // the per-connection stream ceiling follows the limits: raising them raises it
    maxStreamsPerConnection: streamsPerConnection(opts.config.limits),
    ...(udxHub === undefined ? {} : { udxHub }),
    ...(opts.skipUnheardEvents === true ? { skipUnheardEvents: true } : {}),
    ...Discovery.nodeOptions(opts.config, opts.listen ?? opts.config.listen),
  })
  return { libp2p, known, strangers, udxHub }
}
