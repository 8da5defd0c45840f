/** The home relay's status and options, and `relays` entries as the node parses them (src/relay/client/home-relay.ts). */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { WarrenError, type WarrenErrorJSON } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { CircuitLimit } from '../info.ts'

export type RelayState = 'home' | 'standby' | 'unreachable' | 'refused'

export interface RelayEntry {
  id: string
  addr: string
  state: RelayState
  /** Round trip of the latest measurement, ms. */
  rttMs?: number
  /** Why the relay is unreachable or refused. */
  error?: WarrenErrorJSON
  /** This node holds a standby reservation on it (besides the one on its home relay). */
  reserved?: boolean
  /** When the standby reservation expires unless renewed (Warren renews it at half its lifetime), ms since the epoch. */
  expiresAt?: number
}

/** A relay of config `relays` as the node keeps it: its id, address and status entry. */
export interface Candidate {
  id: PeerId
  addr: Multiaddr
  entry: RelayEntry
}

export interface HomeRelayStatus {
  /** Relay id of the home relay; null while none holds a reservation for this node. */
  home: string | null
  /** When the node moved to its home relay, ms since the epoch. */
  since?: number
  /** When the reservation expires unless renewed, ms since the epoch. */
  expiresAt?: number
  /** Limits the home relay puts on connections to this node; null when unlimited. */
  limits?: CircuitLimit | null
  relays: RelayEntry[]
}

export interface HomeRelayOptions {
  log?: Logger
  /** Ping of the home relay to catch a dead relay whose connection did not close, ms (default 10000). */
  checkIntervalMs?: number
  /** Time for one relay to answer a ping or grant a reservation, ms (default 4000). */
  attemptTimeoutMs?: number
  /** Shared tokens by relay id (config `relayTokens`), each presented only to its relay. */
  tokens?: Record<string, string>
}

/** Parses `relays` entries; each must name its relay with /p2p/<id>. */
export function parseRelayAddr(text: string): { id: PeerId; addr: Multiaddr } {
  const addr = multiaddr(text)
  const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
  if (id === undefined || text.includes('/p2p-circuit')) {
    throw new WarrenError('ERR_CONFIG_INVALID', `relay address ${text} does not end with /p2p/<relay id>`, {
      hint: 'Copy the relay address with its id from `warren relay status` on the relay, e.g. /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW…',
    })
  }
  return { id: peerIdFromString(id), addr }
}

/**
 * A relay's line in `warren status`: its state, `(reserved, expires in 28 min)` for the standby reservation, the round
 * trip and why it is unreachable or refused.
 */
export function describeRelayEntry(e: RelayEntry, now = Date.now()): string {
  let reserved = ''
  if (e.reserved === true) {
    const left = e.expiresAt === undefined ? undefined : Math.max(0, Math.round((e.expiresAt - now) / 1000))
    const expires =
      left === undefined ? '' : left >= 120 ? `, expires in ${Math.round(left / 60)} min` : `, expires in ${left} s`
    reserved = ` (reserved${expires})`
  }
  const rtt = e.rttMs === undefined ? '' : `  rtt ${e.rttMs.toFixed(1)} ms`
  return `${e.state}${reserved}${rtt}${e.error === undefined ? '' : `  ${e.error.message}`}`
}
