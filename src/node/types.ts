/**
 * Shapes shared by the node, the daemon's API and the client. Everything here is plain JSON so it can cross the
 * local API unchanged.
 */

import type { DiscoveryStatus } from '../discovery/discovery.ts'
import type { ErrorCode } from '../errors.ts'
import type { HomeRelayStatus } from '../relay/home-relay.ts'
import type { DirectPathStatus } from '../traversal/direct-paths.ts'
import type { NetcheckReport } from '../traversal/netcheck.ts'

/** How a connection to a peer runs. */
export interface PathInfo {
  kind: 'direct' | 'relay'
  /** The remote multiaddr in use (for relay: the relay's circuit address). */
  addr: string
  /** Relay node id when kind is relay. */
  relay?: string
}

export interface ServiceInfo {
  name: string
  target: string
  /** Allow list as configured; undefined means "every node in peers". */
  allow?: string[]
  kubo: boolean
  /** Where it came from: config.json or `warren expose` at runtime. */
  source: 'config' | 'runtime'
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

/** A failure a forward saw: when, its error code and message. */
export interface ForwardError {
  /** When it happened, ms since the Unix epoch. */
  at: number
  code: ErrorCode
  message: string
}

/**
 * The service check of a forward: one service stream opened (and closed again at once) when the forward was added,
 * or restored at daemon start. `ok`: the service answered OK; `failed`: `error` says why (a refusal only at
 * restore, since `warren forward` refuses to add such a forward); `skipped`: added with `--no-check`;
 * `running`: under way (restored forwards are checked in the background).
 */
export interface ForwardCheck {
  state: 'ok' | 'failed' | 'skipped' | 'running'
  /** When the check finished. */
  at?: number
  error?: ForwardError
}

export interface ForwardInfo {
  /** `host:port` it listens on (actual port when 0 was asked for). */
  listen: string
  node: string
  service: string
  /** Open client connections right now. */
  active: number
  /** Connections served since it started. */
  total: number
  /** Connections whose service stream could not be opened or ended abnormally. */
  failed: number
  /** The latest of those failures. */
  lastError?: ForwardError
  check: ForwardCheck
}

/** `warren netcheck`: what the relays' STUN responders see of this node, and the relays themselves. */
export interface NetcheckResult extends NetcheckReport {
  /** The home relay, when config `relays` names any. */
  home: string | null
  relays: { id: string; addr: string; state: string; rttMs?: number }[]
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
  streams: { active: number; total: number }
  /** The access port (SOCKS5, HTTP proxy, gateway) when it runs: the address actually bound. */
  access?: { listen: string }
  /** The .warren DNS server when it runs (UDP and TCP). */
  dns?: { listen: string }
  /** The home relay and every configured relay's state, when config `relays` names any. */
  relay?: HomeRelayStatus
  /** DHT health (mode, routing table, last publish), mDNS and the lookup cache. */
  discovery?: DiscoveryStatus
}
