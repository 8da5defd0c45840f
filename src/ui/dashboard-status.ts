/**
 * What the dashboard polls at `/status.json`: the node's status (`warren status --json`) with what the page shows
 * besides it:
 *
 * - `rttMs` on each connected peer: the round trip of the connection its path names, as the node's connection
 *   monitor last measured it (a Yamux PING every 10 s on every connection, src/p2p/conn-monitor.ts); absent until
 *   the first one;
 * - `netcheck`: the NAT as the relays' STUN responders see it (`warren netcheck`), run when the page first asks and
 *   again every {@link NETCHECK_EVERY_MS} while it keeps asking; `{ error }` when it cannot run (traversal off, no
 *   relay answered), `{ pending: true }` until the first one finished;
 * - `usage`: who used which service (src/ui/usage.ts), the {@link MAX_USAGE_ROWS} most recently used pairs.
 */
import type { Connection } from '@libp2p/interface'
import { toWarrenError } from '../errors.ts'
import type { NetcheckResult, NodeStatus, PeerInfo } from '../node/types.ts'
import type { ServiceUsage, UsageTally } from './usage.ts'

/** How often the NAT check runs again while the dashboard is open. */
export const NETCHECK_EVERY_MS = 5 * 60_000
/** Service and peer pairs sent to the page at most. */
export const MAX_USAGE_ROWS = 200

export type DashboardNetcheck = NetcheckResult | { error: string; code: string } | { pending: true }

export interface DashboardStatus extends NodeStatus {
  peers: (PeerInfo & { rttMs?: number })[]
  netcheck: DashboardNetcheck
  usage: UsageTally[]
}

/** The parts of a node the dashboard reads. */
export interface DashboardNode {
  status(): NodeStatus
  netcheck(): Promise<NetcheckResult>
  libp2p: { getConnections(): Connection[] }
}

/** `/status.json` of the dashboard: {@link DashboardStatus}, with the NAT check cached. */
export function dashboardStatus(
  node: DashboardNode,
  usage?: ServiceUsage,
  now: () => number = Date.now,
): () => DashboardStatus {
  let netcheck: DashboardNetcheck = { pending: true }
  let checkedAt: number | undefined
  let running = false
  const refresh = (): void => {
    if (running || (checkedAt !== undefined && now() - checkedAt < NETCHECK_EVERY_MS)) return
    running = true
    checkedAt = now()
    node.netcheck().then(
      (r) => {
        netcheck = r
        running = false
      },
      (err: unknown) => {
        const e = toWarrenError(err)
        netcheck = { error: e.message, code: e.code }
        running = false
      },
    )
  }
  return () => {
    refresh()
    // the status first: reading it samples the open streams, whose bytes then reach the usage tallies too
    const st = node.status()
    const rtt = new Map<string, number>()
    for (const c of node.libp2p.getConnections()) {
      if (c.rtt !== undefined) rtt.set(`${c.remotePeer.toString()} ${c.remoteAddr.toString()}`, c.rtt)
    }
    const peers = st.peers.map((p) => {
      const ms = p.path === undefined ? undefined : rtt.get(`${p.id} ${p.path.addr}`)
      return ms === undefined ? p : { ...p, rttMs: ms }
    })
    return { ...st, peers, netcheck, usage: usage?.list().slice(0, MAX_USAGE_ROWS) ?? [] }
  }
}
