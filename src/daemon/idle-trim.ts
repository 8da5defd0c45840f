/**
 * Hands back to the system the memory a burst of traffic left behind, once the daemon is quiet again (Linux, glibc).
 * Bulk transfers and many connections allocate and free tens of MiB of native memory (socket buffers, cipher state,
 * the backing stores of Buffers). Two things keep it after the burst:
 *
 * - **V8.** A Buffer that lived long enough to reach the old generation is freed, with its native backing store,
 *   only by a major collection, and an idle V8 runs none: after the bench's workloads the daemon hosting the
 *   services held ~33 MiB of such dead Buffers a minute later, and its old generation kept pages that hold a few
 *   live objects. With `compact`, each trim starts with a last-resort major collection (what V8 does under memory
 *   pressure: it frees those Buffers and moves the survivors together, giving emptied pages back), 0.1-0.3 s for
 *   the daemon's heap on 2 busy CPUs.
 * - **glibc** keeps what was freed inside its heap, where a few live allocations near the top stop it from
 *   shrinking. `malloc_trim(0)` returns every free page of every arena.
 *
 * Every `intervalMs` the daemon's CPU time over the interval is read: after an interval of activity (CPU above
 * `busyShare` of it), each of the next `quietTicks` quiet intervals (below `quietShare`) trims once, so the trim
 * also catches what is freed a little after the burst. libc is called through koffi, loaded on the first trim; V8's
 * `gc` is the global one (`--expose-gc`) or, without it, taken from a fresh context with the flag set for that moment.
 *
 * @example
 * ```ts
 * const trim = startIdleTrim()
 * // …
 * trim.stop()
 * ```
 */
import { createRequire } from 'node:module'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** V8's `gc` as `--expose-gc` defines it. */
export type Gc = (opts?: {
  type?: 'major' | 'minor'
  execution?: 'sync' | 'async'
  flavor?: 'regular' | 'last-resort'
}) => void

export interface IdleTrimOptions {
  intervalMs?: number
  /** An interval with more CPU time than this share of it is busy (default 0.08). */
  busyShare?: number
  /**
   * One with less is quiet (default 0.03). An idle daemon's own timers (path watches, mDNS, the DHT) took 1.1-1.7%
   * of a CPU over 20-30 s windows on the 2-vCPU machine of docs/performance.md: with 1%, most idle intervals were not
   * quiet, and the memory of a burst could stay for minutes.
   */
  quietShare?: number
  quietTicks?: number
  /**
   * Compact the V8 heap before each trim: `true` with V8's own `gc` ({@link v8Gc}), or the collector to call (tests);
   * default off. The daemon turns it on only when it runs with a fixed heap growing factor (`--heap-growing-percent`,
   * bin/warren.js): with V8's own estimate, the old generation's limit stayed near the live heap after a collection
   * at idle, and bulk transfers after it ran under constant major collections (75-175 MiB/s through a forward
   * against 300-540 before it, 5-6 CPU-s per GiB on each end against 1.2-1.8).
   */
  compact?: boolean | Gc
  /**
   * Count the start-up before the call as a burst: for the first `intervalMs` the CPU is read every `firstMs`, and
   * the first of those steps that is quiet trims once. The daemon hands back what loading and starting left within
   * seconds of being ready, instead of never (a daemon that was never busy never had a quiet interval after a busy
   * one). Default off.
   */
  afterStart?: boolean
  /** With `afterStart`: the step of the start-up phase, ms (default 1,000). */
  firstMs?: number
  /** Called after each trim with what `malloc_trim` returned (1: memory was released), for logs and tests. */
  onTrim?: (released: number, report: TrimReport) => void
}

/** What one trim did, for the daemon's log. */
export interface TrimReport {
  /** The process's resident memory before the collection and after the trim, bytes. */
  rssBefore: number
  rssAfter: number
  /** Whether the V8 heap was compacted first. */
  compacted: boolean
  /** Time the collection and the trim took, ms. */
  ms: number
}

/** A log line for a {@link TrimReport}. */
export function describeTrim(r: TrimReport): string {
  const mib = (b: number): string => (b / 1048576).toFixed(1)
  const what = r.compacted ? 'heap compacted and free memory handed back' : 'free memory handed back'
  return `idle: ${what} in ${r.ms.toFixed(0)} ms, resident ${mib(r.rssBefore)} → ${mib(r.rssAfter)} MiB`
}

type MallocTrim = (pad: number) => number
let mallocTrim: MallocTrim | undefined | null

function trimFn(): MallocTrim | undefined {
  if (mallocTrim !== undefined) return mallocTrim ?? undefined
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
    mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as MallocTrim
  } catch {
    mallocTrim = null // not glibc: nothing to trim this way
  }
  return mallocTrim ?? undefined
}

/** Hands the free memory of every glibc arena back to the system now: what `malloc_trim` returned, or undefined off glibc. */
export function trimMalloc(): number | undefined {
  return trimFn()?.(0)
}

let v8GcFn: Gc | undefined | null

/**
 * V8's `gc`: the global one when the process runs with `--expose-gc`, otherwise the one a new context gets while
 * the flag is set (it is unset again at once, so no other context gains a `gc`); undefined where neither works.
 */
export function v8Gc(): Gc | undefined {
  const own = (globalThis as { gc?: Gc }).gc
  if (typeof own === 'function') return own
  if (v8GcFn !== undefined) return v8GcFn ?? undefined
  try {
    setFlagsFromString('--expose-gc')
    const fn = runInNewContext('gc') as unknown
    v8GcFn = typeof fn === 'function' ? (fn as Gc) : null
  } catch {
    v8GcFn = null
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
  return v8GcFn ?? undefined
}

/** One last-resort major collection: frees dead Buffers with their backing stores and compacts the old generation. */
export function compactV8Heap(gc: Gc): void {
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
}

/** Starts the trimmer (a no-op off Linux); `stop()` ends it. The timer never keeps the process alive. */
export function startIdleTrim(opts: IdleTrimOptions = {}): { stop(): void } {
  if (process.platform !== 'linux') return { stop: () => {} }
  const intervalMs = opts.intervalMs ?? 15_000
  const busy = (opts.busyShare ?? 0.08) * intervalMs * 1000
  const quiet = (opts.quietShare ?? 0.03) * intervalMs * 1000
  const quietTicks = opts.quietTicks ?? 3
  const gc = typeof opts.compact === 'function' ? opts.compact : opts.compact === true ? v8Gc() : undefined
  let last = process.cpuUsage()
  // the start-up counts as a burst: one trim at its first quiet step
  let owed = opts.afterStart === true ? 1 : 0
  const started = performance.now()
  const firstMs = Math.min(opts.firstMs ?? 1_000, intervalMs)
  /** One interval of `ms`; `early`: a short step of the start-up phase, after which one trim is enough. */
  const tick = (ms: number, early: boolean): void => {
    const now = process.cpuUsage()
    const used = now.user - last.user + (now.system - last.system)
    last = now
    if (used > busy * (ms / intervalMs)) owed = early ? Math.max(owed, 1) : quietTicks
    else if (used < quiet * (ms / intervalMs) && owed > 0) {
      owed--
      const t0 = performance.now()
      const rssBefore = process.memoryUsage.rss()
      if (gc !== undefined) compactV8Heap(gc)
      const trim = trimFn()
      if (trim !== undefined) {
        // called on its own: inside `onTrim?.(…)` the argument is not evaluated when there is no onTrim
        const released = trim(0)
        const report = {
          rssBefore,
          rssAfter: process.memoryUsage.rss(),
          compacted: gc !== undefined,
          ms: performance.now() - t0,
        }
        opts.onTrim?.(released, report)
      }
      // the collection and the trim themselves are not activity
      last = process.cpuUsage()
    }
  }
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const schedule = (): void => {
    const early = opts.afterStart === true && performance.now() - started < intervalMs
    const ms = early ? firstMs : intervalMs
    timer = setTimeout(() => {
      tick(ms, early)
      if (!stopped) schedule()
    }, ms)
    timer.unref()
  }
  schedule()
  return {
    stop: () => {
      stopped = true
      clearTimeout(timer)
    },
  }
}
