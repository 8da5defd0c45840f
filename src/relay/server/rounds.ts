/**
 * Rounds over the relay's connections: each open connection is visited once per `periodMs`, a slice every `tickMs`,
 * so that work per connection (a liveness ping, parking an idle one) is spread evenly instead of falling on one tick.
 * A round visits the connections open when it starts, and drops its references as it goes: closed connections do
 * not stay reachable from here.
 */
import type { Connection } from '@libp2p/interface'
import type { WarrenLibp2p } from '../../p2p/create.ts'

export interface RoundsOptions {
  periodMs: number
  tickMs: number
  /** Checked before each visit: false ends this tick's slice early, the rest wait for the next tick. */
  canVisit?: () => boolean
}

export function connectionRounds(
  libp2p: Pick<WarrenLibp2p, 'getConnections'>,
  opts: RoundsOptions,
  visit: (conn: Connection) => void,
): { stop(): void } {
  const ticksPerPeriod = Math.max(1, Math.round(opts.periodMs / opts.tickMs))
  let queue: Connection[] = []
  let at = 0
  let tick = 0
  const timer = setInterval(() => {
    if (tick % ticksPerPeriod === 0) {
      queue = libp2p.getConnections()
      at = 0
    }
    tick++
    const slice = Math.ceil(queue.length / ticksPerPeriod)
    const end = Math.min(queue.length, at + slice)
    for (; at < end && (opts.canVisit?.() ?? true); at++) {
      const conn = queue[at]!
      if (conn.status === 'open') visit(conn)
    }
    if (at >= queue.length) queue = []
  }, opts.tickMs)
  timer.unref()
  return {
    stop: () => {
      clearInterval(timer)
      queue = []
    },
  }
}
