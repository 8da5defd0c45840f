/**
 * A node's check that its connections are alive, in place of js-libp2p's connection monitor (which Warren's nodes
 * turn off). The schedule and the time-outs are the monitor's: every connection every 10 s, under libp2p's adaptive
 * time-out (5 s at least, longer after slow answers), and a connection whose check fails is aborted, so that the
 * node finds a dead relay or peer and reconnects. What differs is the check: the muxer's own ping where the muxer has
 * one (Yamux: a PING frame that the far side's muxer answers by itself), a ping stream only on other muxers
 * (`checkConnection`, src/p2p/conn-ping.ts).
 *
 * The far end of these checks is often a relay with thousands of nodes: the monitor's ping stream costs it a new
 * Yamux stream, a protocol negotiation through Noise and a handler, 1,000 a second at 10,000 nodes, which is more
 * than 2 vCPUs can answer; a PING frame costs it one 12-byte frame back (docs/performance.md, Idle reservations).
 *
 * @example
 * ```ts
 * createLibp2p({ connectionMonitor: { enabled: false }, services: { monitor: connMonitor() } })
 * ```
 */
import { setMaxListeners } from 'node:events'
import type { ComponentLogger, Connection, Startable } from '@libp2p/interface'
import { AdaptiveTimeout } from '@libp2p/utils'
import { checkConnection } from './conn-ping.ts'

export interface ConnMonitorInit {
  /** Each connection is checked once per this many ms (libp2p's monitor: 10 s). */
  intervalMs?: number
  /**
   * Abort a connection whose check fails (default true). Without, a check waits for its answer as long as it takes
   * (a late answer to a check given up would be an error on the connection).
   */
  abortOnFailure?: boolean
}

interface ConnMonitorComponents {
  connectionManager: { getConnections(): Connection[] }
  logger: ComponentLogger
}

class ConnMonitor implements Startable {
  readonly #components: ConnMonitorComponents
  readonly #intervalMs: number
  readonly #abortOnFailure: boolean
  readonly #timeout = new AdaptiveTimeout()
  readonly #log: ReturnType<ComponentLogger['forComponent']>
  #stop: AbortController | undefined
  #timer: NodeJS.Timeout | undefined
  /** Connections aborted because their check failed, since the start. */
  aborted = 0

  constructor(components: ConnMonitorComponents, init: ConnMonitorInit) {
    this.#components = components
    this.#intervalMs = init.intervalMs ?? 10_000
    this.#abortOnFailure = init.abortOnFailure ?? true
    this.#log = components.logger.forComponent('warren:conn-monitor')
  }

  readonly [Symbol.toStringTag] = 'warren:conn-monitor'

  start(): void {
    this.#stop = new AbortController()
    // every check in flight listens on it, one per connection
    setMaxListeners(Infinity, this.#stop.signal)
    this.#timer = setInterval(() => {
      for (const conn of this.#components.connectionManager.getConnections()) void this.#check(conn)
    }, this.#intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#stop?.abort()
    clearInterval(this.#timer)
  }

  async #check(conn: Connection): Promise<void> {
    const stop = this.#stop!.signal
    if (!this.#abortOnFailure) {
      conn.rtt = await checkConnection(conn, stop, this.#intervalMs * 6).catch(() => conn.rtt)
      return
    }
    const signal = this.#timeout.getTimeoutSignal({ signal: stop })
    try {
      conn.rtt = await checkConnection(conn, signal, signal.timeout)
    } catch (err) {
      const e = err as Error
      // a peer without the ping protocol has answered the negotiation: alive
      if (e.name === 'UnsupportedProtocolError' || stop.aborted || conn.status !== 'open') return
      this.#log.error('the check of %p failed - %e', conn.remotePeer, e)
      this.aborted++
      conn.abort(new Error(`the connection's liveness check failed: ${e.message}`))
    } finally {
      this.#timeout.cleanUp(signal)
    }
  }
}

/** The libp2p service: `services: { monitor: connMonitor() }`, with libp2p's own monitor turned off. */
export function connMonitor(init: ConnMonitorInit = {}): (components: ConnMonitorComponents) => ConnMonitor {
  return (components) => new ConnMonitor(components, init)
}
