/**
 * When V8 optimizes a running daemon's code. Much of a forwarded connection's code runs once per connection (the
 * accept, the local-user check, a new stream, the service request, the pipe), so V8's default thresholds (Maglev
 * after 400 calls, TurboFan after 3,000, and 500 calls after a call site met a new object shape) left it
 * unoptimized for thousands of connections, and again after every pause: a major collection at idle drops the
 * shapes the optimized code was made for, V8 throws that code away, and each call site then meets its shapes anew,
 * which pushes the 500-call wait on with every connection. Once the daemon has started it optimizes after 150
 * calls, and 50 after a new shape. A new connection right after a 45-s pause: p50 1.27-1.34 ms with V8's wait and
 * TurboFan after 1,000 calls, 0.93-1.00 ms with these (docs/performance.md, "A new connection after a pause").
 *
 * Not from the start: a starting daemon runs much code a few hundred times (loading, configuration, its first
 * handshakes), and compiling all of it competes with the start for the CPU. The first connection to a daemon
 * started a few seconds before took 38.6-40.0 ms with these thresholds from the start, 30.7-33.6 with them set once
 * it has started, 27.4-31.3 with TurboFan after 1,000 calls throughout (bench:peers' cold connect, medians of two
 * runs of each).
 *
 * V8 reads these thresholds whenever it sets a function's next check, so setting them in a running process takes
 * effect (test/daemon/tiering.test.ts checks it against the V8 in use).
 */
import { setFlagsFromString } from 'node:v8'

/** The thresholds a running daemon uses, as V8 flags. */
export const SOONER_TIERING = [
  '--invocation-count-for-maglev=150',
  '--invocation-count-for-turbofan=150',
  '--minimum-invocations-after-ic-update=50',
] as const

/** The threshold bin/warren.js starts `warren up` with; in `execArgv`, it says the daemon was started there. */
export const LAUNCHER_TIERING = '--invocation-count-for-turbofan=1000'

/** How long after it is ready the daemon sets {@link SOONER_TIERING}, ms: the length of idle-trim.ts's start-up phase. */
export const TIERING_AFTER_START_MS = 15_000

/** Sets {@link SOONER_TIERING} for this process now. */
export function optimizeSooner(): void {
  setFlagsFromString(SOONER_TIERING.join(' '))
}

/**
 * Sets {@link SOONER_TIERING} once `ms` have passed, when the process runs with bin/warren.js's start-up threshold
 * (`--invocation-count-for-turbofan=1000` in `execArgv`) and with no tiering flag of the user's own; otherwise does
 * nothing. The timer does not keep the process alive.
 */
export function optimizeSoonerAfter(
  ms: number,
  execArgv: readonly string[] = process.execArgv,
  onSet?: () => void,
): { stop: () => void } {
  const tiering = execArgv.filter((f) => /^--(invocation-count-for-|minimum-invocations-)/.test(f))
  // bin/warren.js's flag and nothing else: any other tiering flag is the user's, and theirs is kept
  if (tiering.length !== 1 || tiering[0] !== LAUNCHER_TIERING) return { stop: () => {} }
  const timer = setTimeout(() => {
    optimizeSooner()
    onSet?.()
  }, ms)
  timer.unref()
  return { stop: () => clearTimeout(timer) }
}
