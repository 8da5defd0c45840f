/**
 * The shapes of the direct-path upgrade: the options of one attempt (attempt.ts) and its result, and the options and
 * per-peer status of `DirectPaths` (direct-paths.ts).
 *
 * @packageDocumentation
 */
import type { Connection, PeerId } from '@libp2p/interface'
import type { Logger } from '../../log.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { UdxHub } from '../../p2p/udx/transport.ts'
import type { PunchPlan } from '../punch/punch.ts'

export interface DirectPathOptions {
  hub: UdxHub
  /** STUN servers (the relays' STUN ports). Two or more detect symmetric NATs; with one, the NAT is taken as easy. */
  stunServers: readonly Endpoint[]
  /** Bound on the whole upgrade (default 15 s). */
  timeoutMs?: number
  /** Sockets the hard side of a birthday attempt opens (default 256). */
  birthdaySockets?: number
  /** Random probes the easy side of a birthday attempt sends at most (default 768). */
  maxProbes?: number
  /** Bound on the punching itself (default 10 s; 2 s when both NATs are hard). */
  punchTimeoutMs?: number
  /** Try a TCP simultaneous open before UDX when both NATs allow it (default true). */
  tcp?: boolean
  /** Bound on the TCP attempt (default `TCP_PUNCH_TIMEOUT_MS` of tcp-punch.ts). */
  tcpTimeoutMs?: number
  /** Where the upgrade tells what it tried (debug lines). */
  log?: Logger
  /** This node's router-mapped addresses (src/traversal/portmap), offered to the peer to dial before punching. */
  portMapped?: () => readonly string[]
  signal?: AbortSignal
}

/**
 * `tcp`: a TCP simultaneous open, `tcp-birthday`: TCP through a symmetric NAT, `mapped`: a plain dial of an address
 * the peer's router maps (no punching); the others are UDX punch plans.
 */
export type DirectPlan = PunchPlan | 'tcp' | 'tcp-birthday' | 'mapped'

export interface DirectPathResult {
  connection: Connection
  plan: DirectPlan
  /** From the start of the upgrade to an upgraded direct connection. */
  ms: number
  remote: Endpoint
  /** This node's STUN servers that did not answer (`host:port (why)`): the NAT was judged without them. */
  untested?: string[]
}

export interface DirectPathStatus {
  state: 'upgrading' | 'direct' | 'relayed'
  /** How the NATs were punched, once direct. */
  plan?: string
  /** Time from the start of the upgrade to the direct connection, ms. */
  ms?: number
  /** Why the path stays relayed. */
  reason?: string
  /** How many times a direct path to this peer was lost (closed while the relayed connection stayed). */
  lost?: number
  /** The re-punch attempt running, failed or (with `direct`) successful, since the last loss. */
  attempt?: number
  /** The retry of a failed first upgrade running, failed or (with `direct`) successful. */
  retry?: number
  /** When the next re-punch runs (epoch ms), while one is scheduled. */
  retryAt?: number
  /**
   * STUN servers (relays) that did not answer during the latest upgrade (`host:port (why)`): the upgrade went ahead
   * with the others, and the next upgrade asks them again.
   */
  untested?: string[]
  at: number
}

export interface DirectPathsOptions {
  /** Config `relays` (`…/p2p/<relay id>`): their STUN responders tell this node its public UDP mapping. */
  relays: readonly string[]
  log?: Logger
  /** Bound on one upgrade, ms (default 15000). */
  timeoutMs?: number
  /** Silence after which a direct path counts as lost, ms (default 3000, see path-watch.ts). */
  silentMs?: number
  /** Try TCP simultaneous open before UDX (config traversal.tcp, default true). */
  tcp?: boolean
  /** Decides on a peer's punch request: undefined answers it, a string refuses it with that reason (punch/gate.ts). */
  admit?: (peer: PeerId) => string | undefined
  /** This node's router-mapped addresses, read at each upgrade (src/node/port-mapping-part.ts). */
  portMapped?: () => readonly string[]
  /**
   * Called when a direct path went silent (its NAT mapping is gone): the same NAT may have dropped the relay
   * connections too, so the node checks them at once and the reservations come back alongside the re-punch.
   */
  onSilentPath?: (why: string) => void
}
