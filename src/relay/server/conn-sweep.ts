/**
 * The relay's check that its connections are alive, in place of js-libp2p's connection monitor. The monitor pings
 * every connection every 10 s, all of them in the same tick, and aborts each whose ping fails: with thousands of
 * idle reservations that is a burst of thousands of streams every 10 s, whose garbage made V8 size the relay's heap
 * for the peak, and whose time-outs under load aborted live connections (25 of 2,000 in bench/relay-heap.ts).
 *
 * The sweep checks each connection once per `periodMs` (default 60 s), spread evenly over the period (one slice per
 * second), at most `maxInFlight` at once: a Yamux PING frame, which the node's muxer answers by itself (a ping
 * stream on other muxers; `checkConnection`). A connection whose ping fails and that is still open is aborted; a peer
 * that does not speak the ping protocol has answered, so it counts as alive. TCP connections also close after
 * 2 minutes without traffic either way (@libp2p/tcp's inactivity time-out); the sweep is what finds a silent
 * WebSocket client, and a TCP client that stays connected but stopped answering.
 *
 * @example
 * ```ts
 * const sweep = startConnSweep(libp2p, { log })
 * // …
 * sweep.stop()
 * ```
 */
import type { Connection } from '@libp2p/interface'
import { checkConnection } from '../../p2p/conn-ping.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { connectionRounds } from './rounds.ts'

export interface ConnSweepOptions {
  /** Each connection is pinged once per this many ms. */
  periodMs?: number
  /** A ping (opening its stream included) must be answered within this many ms. */
  timeoutMs?: number
  /** Pings in flight at once. */
  maxInFlight?: number
  /** How often a slice of the connections is pinged, ms. */
  tickMs?: number
  log?: (message: string) => void
}

export interface ConnSweep {
  /** Connections aborted because their ping failed, since the start. */
  readonly aborted: number
  stop(): void
}

export function startConnSweep(libp2p: Pick<WarrenLibp2p, 'getConnections'>, opts: ConnSweepOptions = {}): ConnSweep {
  const periodMs = opts.periodMs ?? 60_000
  const timeoutMs = opts.timeoutMs ?? 20_000
  const maxInFlight = opts.maxInFlight ?? 64
  const tickMs = opts.tickMs ?? 1_000
  const log = opts.log ?? (() => {})
  let inFlight = 0
  let aborted = 0
  let stopped = false

  const check = async (conn: Connection): Promise<void> => {
    inFlight++
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    try {
      await checkConnection(conn, timeout.signal, timeoutMs)
    } catch (err) {
      const e = err as Error
      if (stopped || conn.status !== 'open' || e.name === 'UnsupportedProtocolError') return
      aborted++
      log(`closing the connection of ${conn.remotePeer} (${conn.remoteAddr}): its ping failed (${e.message})`)
      conn.abort(new Error(`the relay's liveness ping failed: ${e.message}`))
    } finally {
      clearTimeout(timer)
      inFlight--
    }
  }

  const rounds = connectionRounds(libp2p, { periodMs, tickMs, canVisit: () => inFlight < maxInFlight }, (conn) => {
    void check(conn)
  })

  return {
    get aborted() {
      return aborted
    },
    stop: () => {
      stopped = true
      rounds.stop()
    },
  }
}
