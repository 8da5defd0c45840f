/**
 * Liveness of direct paths. Every UDX stream of a direct connection sends a heartbeat when it has had nothing to send
 * for {@link KEEPALIVE_MS}, and the peer acknowledges each one. That traffic keeps both NATs' UDP mappings fresh (home
 * routers forget an idle mapping after 30 s to a few minutes; Linux conntrack: 30 s unreplied, 120 s once both sides
 * spoke), and it means a healthy stream receives a packet at least every KEEPALIVE_MS plus a round trip, loaded or
 * idle, whichever side sends.
 *
 * `PathWatch` samples each stream's received-packet counter and destroys a stream that received nothing for
 * `silentMs` (default {@link SILENT_MS}): the NAT mapping changed or expired (router restart, flushed or timed-out
 * conntrack entry, a new public port), or the peer vanished. UDX itself would go on retransmitting for about a minute
 * (six RTO doublings from 1 s) and its heartbeats expect no answer, so without this a dead direct connection lingers
 * until libp2p's connection monitor fails a ping (10 s interval, measured 12–13 s). Destroying the stream closes its
 * libp2p connection; new streams take the relayed connection, and `DirectPaths` punches again.
 *
 * A check that runs late because this process's event loop was blocked restarts every stream's clock instead of
 * judging it: the packets that arrived meanwhile are still waiting in the socket buffer. With no stream to watch the
 * timer sleeps until {@link PathWatch.wake} (a new stream, see `onAnyUdxStream` in endpoint.ts).
 *
 * @packageDocumentation
 */
import type { UDXStream } from 'udx-native'
import { WarrenError } from '../../errors.ts'
import { LazyTicker } from '../lazy-ticker.ts'

/** Heartbeat interval of direct-path UDX streams, ms (both sides; UDX acks each heartbeat). */
export const KEEPALIVE_MS = 1000
/** Silence after which a direct path counts as lost, ms: three heartbeat intervals. */
export const SILENT_MS = 3000

export interface PathWatchOptions {
  /** Declare a stream dead after this long without a received packet (default {@link SILENT_MS}). */
  silentMs?: number
  /** Sampling interval (default 500 ms). */
  checkMs?: number
  /** Called once for each stream the watch destroys, before it is destroyed. */
  onSilent?: (stream: UDXStream, silentMs: number) => void
}

interface Sample {
  packets: number
  since: number
}

export class PathWatch {
  readonly #streams: () => Iterable<UDXStream>
  readonly #silentMs: number
  readonly #checkMs: number
  readonly #onSilent: PathWatchOptions['onSilent']
  readonly #samples = new WeakMap<UDXStream, Sample>()
  readonly #ticker: LazyTicker
  #lastCheck = 0

  /** `streams` lists the streams to watch (read at every check). */
  constructor(streams: () => Iterable<UDXStream>, opts: PathWatchOptions = {}) {
    this.#streams = streams
    this.#silentMs = opts.silentMs ?? SILENT_MS
    this.#checkMs = opts.checkMs ?? 500
    this.#onSilent = opts.onSilent
    if (this.#silentMs < 2 * KEEPALIVE_MS) {
      throw new RangeError(`silentMs must be at least two keepalive intervals (${2 * KEEPALIVE_MS} ms)`)
    }
    this.#ticker = new LazyTicker(
      this.#checkMs,
      () => this.check() > 0,
      () => {
        this.#lastCheck = performance.now()
      },
    )
  }

  start(): void {
    this.#ticker.start()
  }

  /** A stream may have been opened: sampling starts again if it slept for want of streams. */
  wake(): void {
    this.#ticker.wake()
  }

  stop(): void {
    this.#ticker.stop()
  }

  /** Whether the timer is off for want of streams (or stopped). */
  get sleeping(): boolean {
    return this.#ticker.sleeping
  }

  /** One sampling round (the timer calls it; tests may too): how many streams it looked at. */
  check(now = performance.now()): number {
    const stalled = now - this.#lastCheck > 2 * this.#checkMs + 250
    this.#lastCheck = now
    // a stream still opening counts too: it may connect before the next round
    let watched = 0
    for (const stream of this.#streams()) {
      watched++
      if (!stream.connected || stream.destroying) continue
      const packets = stream.packetsReceived
      const s = this.#samples.get(stream)
      if (s === undefined || s.packets !== packets || stalled) {
        this.#samples.set(stream, { packets, since: now })
        continue
      }
      const silent = now - s.since
      if (silent < this.#silentMs) continue
      this.#onSilent?.(stream, silent)
      stream.destroy(
        new WarrenError(
          'ERR_TIMEOUT',
          `no packet from ${stream.remoteHost}:${stream.remotePort} on the direct path for ${Math.round(silent)} ms`,
          {
            hint: 'The NAT mapping probably changed or expired; new streams use the relay while Warren punches again.',
            details: { remote: `${stream.remoteHost}:${stream.remotePort}`, silentMs: Math.round(silent) },
          },
        ),
      )
    }
    return watched
  }
}
