/**
 * Shapes shared by the node, the daemon's API and the client. Everything here is plain JSON so it can cross the
 * local API unchanged.
 */

import type { ForwardInfo } from '../access/forward.ts'
import type { DiscoveryStatus } from '../discovery/discovery.ts'
import type { OpenFilesStatus } from '../open-files.ts'
import type { PathInfo } from '../p2p/path.ts'
import type { HomeRelayStatus } from '../relay/client/home-relay.ts'
import type { ServiceInfo } from '../services/registry.ts'
import type { StreamCountersSnapshot } from '../services/stream-counters.ts'
import type { NetcheckReport } from '../traversal/net-report/netcheck.ts'
import type { PortMapStatus } from '../traversal/portmap/types.ts'
import type { DirectPathStatus } from '../traversal/upgrade/types.ts'

export type { ForwardCheck, ForwardError, ForwardInfo } from '../access/forward.ts'
export type { PathInfo } from '../p2p/path.ts'
export type { ServiceInfo } from '../services/registry.ts'
export type { StreamCountersSnapshot, StreamTally } from '../services/stream-counters.ts'

export interface StreamsSummary {
  active: number
  total: number
  incoming: { active: number; total: number }
  outgoing: { active: number; total: number }
}

export interface PeerInfo {
  id: string
  aliases: string[]
  connected: boolean
  path?: PathInfo
  addrs: string[]
  /** The latest attempt to upgrade a relayed connection to this peer to a direct path. */
  upgrade?: DirectPathStatus
}

/** `warren netcheck`: what the relays' STUN responders see of this node, and the relays themselves. */
export interface NetcheckResult extends NetcheckReport {
  /** The home relay, when config `relays` names any. */
  home: string | null
  relays: { id: string; addr: string; state: string; rttMs?: number }[]
  /** What the router mapped (PCP, NAT-PMP, UPnP IGD), when config traversal.portMapping is on. */
  portMapping?: PortMapStatus
}

export interface PingResult {
  id: string
  rttMs: number
  path: PathInfo
}

export interface NodeIdentity {
  id: string
  idBase36: string
  ticket: string
  /** A ticket with the id and the home relay only (enough once discovery finds the rest). */
  shortTicket: string
  addrs: string[]
}

export interface NodeStatus extends NodeIdentity {
  version: string
  uptimeMs: number
  services: ServiceInfo[]
  peers: PeerInfo[]
  forwards: ForwardInfo[]
  /** Service streams both ways: open now and opened since start (incoming ones in `incoming`, outgoing in `outgoing`). */
  streams: StreamsSummary
  /** Bytes, open streams and stream ends by cause, per service and per peer, each way. */
  traffic: StreamCountersSnapshot
  /** The access port (SOCKS5, HTTP proxy, gateway) when it runs: the address actually bound. */
  access?: { listen: string }
  /** The .warren DNS server when it runs (UDP and TCP). */
  dns?: { listen: string }
  /** The home relay and every configured relay's state, when config `relays` names any. */
  relay?: HomeRelayStatus
  /** DHT health (mode, routing table, last publish), mDNS and the lookup cache. */
  discovery?: DiscoveryStatus
  /** What the router mapped (PCP, NAT-PMP, UPnP IGD), when config traversal.portMapping is on. */
  portMapping?: PortMapStatus
  /** Direct WebRTC paths from browsers (config `traversal.webrtc`): on, or why not, and the STUN servers offered. */
  webrtc: { enabled: boolean; reason?: string; iceServers: string[] }
  /** The process's open-file limit, the local connections holding a descriptor and those refused at the limit. */
  openFiles: OpenFilesStatus
}

/** What `node.call` answers: the remote method's result, the round trip and the path the call took. */
export interface RemoteCallResult {
  /** The node id (base58) that answered. */
  id: string
  result: unknown
  rttMs: number
  path: PathInfo
}
