/**
 * The direct-path part of a node (config `traversal`): punch requests admitted by a {@link PunchGate} (per peer, and
 * for strangers all together), and {@link DirectPaths} upgrading relayed connections over the node's UDX sockets.
 */
import type { PeerId } from '@libp2p/interface'
import type { Config } from '../config/schema.ts'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import type { UdxHub } from '../p2p/udx/transport.ts'
import type { ServiceRegistry } from '../services/registry.ts'
import { type PunchAdmission, PunchGate } from '../traversal/punch/gate.ts'
import { DirectPaths } from '../traversal/upgrade/direct-paths.ts'
import type { KnownPeers } from './known-peers.ts'

export function directPathsFor(
  libp2p: WarrenLibp2p,
  udxHub: UdxHub,
  config: Config,
  opts: {
    admission(peer: PeerId): PunchAdmission
    onSilentPath(why: string): void
    log: Logger
    /** This node's router-mapped addresses (port-mapping-part.ts), offered to peers before punching. */
    portMapped?: () => readonly string[]
  },
): DirectPaths {
  const { traversal } = config
  const punches = new PunchGate({
    perPeer: traversal.punchRequestsPerPeer,
    strangersPerMinute: traversal.punchRequestsPerMinute,
    admission: opts.admission,
  })
  return new DirectPaths(libp2p, udxHub, {
    relays: config.relays,
    log: opts.log,
    tcp: traversal.tcp,
    admit: (peer) => punches.check(peer),
    onSilentPath: opts.onSilentPath,
    ...(opts.portMapped === undefined ? {} : { portMapped: opts.portMapped }),
  })
}

/** Why `peer` may ask this node to punch: a known node, any node while a service is public, or a node it dialled. */
export function punchAdmission(
  peer: PeerId,
  known: KnownPeers,
  registry: ServiceRegistry,
  libp2p: WarrenLibp2p,
): PunchAdmission {
  if (known.has(peer.toString())) return 'known'
  if (registry.list().some((s) => registry.get(s.name)?.public === true)) return 'public'
  if (libp2p.getConnections(peer).some((c) => c.direction === 'outbound' && c.status === 'open')) return 'dialled'
  return undefined
}
