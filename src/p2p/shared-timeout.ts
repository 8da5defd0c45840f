/**
 * Time-out signals shared by the operations that start within the same {@link SHARE_MS}: each new service stream
 * needs one (it bounds the protocol negotiation, which with optimistic selection never waits), and a signal of its
 * own per stream (`AbortSignal.timeout`: an AbortSignal, a weak reference and a timer that fires tens of seconds
 * later, also for a stream long gone) was 6% of the time the forwarding end took to open a service stream, in a V8
 * profile of new forwarded connections. A shared signal aborts between
 * `ms` and `ms` + {@link SHARE_MS} after the call, with the same `TimeoutError` as `AbortSignal.timeout`.
 *
 * @example
 * ```ts
 * await conn.newStream(protocol, { signal: sharedTimeout(30_000) })
 * ```
 */
import { setMaxListeners } from 'main-event'

/** How long one signal is handed out, ms: the most a time-out runs late. */
export const SHARE_MS = 1000
/** Distinct durations kept at once; callers use a few constants. */
const MAX_KEPT = 16

const kept = new Map<number, { signal: AbortSignal; until: number }>()

/** A signal that aborts `ms` to `ms` + {@link SHARE_MS} from now. */
export function sharedTimeout(ms: number, now: number = Date.now()): AbortSignal {
  const hit = kept.get(ms)
  if (hit !== undefined && now < hit.until && now >= hit.until - SHARE_MS && !hit.signal.aborted) return hit.signal
  const signal = AbortSignal.timeout(ms + SHARE_MS)
  // one signal serves many operations at once, each of which may listen while it waits
  setMaxListeners(Number.POSITIVE_INFINITY, signal)
  if (kept.size >= MAX_KEPT && !kept.has(ms)) kept.clear()
  kept.set(ms, { signal, until: now + SHARE_MS })
  return signal
}
