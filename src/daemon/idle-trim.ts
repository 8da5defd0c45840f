/**
 * Hands back to the system the memory a burst of traffic left free, once the daemon is quiet again (Linux, glibc).
 * Bulk transfers and many connections allocate and free tens of MiB of native memory (socket buffers, cipher state,
 * the backing stores of Buffers); glibc keeps what was freed inside its heap, where a few live allocations near the
 * top stop it from shrinking, so an idle daemon kept ~90 MiB PSS after the bench's workloads against ~50 MiB before
 * them. `malloc_trim(0)` returns every free page of every arena (docs/performance.md).
 *
 * Every `intervalMs` the daemon's CPU time over the interval is read: after an interval of activity (CPU above
 * `busyShare` of it), each of the next `quietTicks` quiet intervals (below `quietShare`) trims once, so the trim
 * also catches what the garbage collector frees a little after the burst. libc is called through koffi, loaded on
 * the first trim.
 *
 * @example
 * ```ts
 * const trim = startIdleTrim()
 * // …
 * trim.stop()
 * ```
 */
import { createRequire } from 'node:module'

export interface IdleTrimOptions {
  intervalMs?: number
  busyShare?: number
  quietShare?: number
  quietTicks?: number
  /** Called after each trim with what `malloc_trim` returned (1: memory was released), for logs and tests. */
  onTrim?: (released: number) => void
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

/** Starts the trimmer (a no-op off Linux); `stop()` ends it. The timer never keeps the process alive. */
export function startIdleTrim(opts: IdleTrimOptions = {}): { stop(): void } {
  if (process.platform !== 'linux') return { stop: () => {} }
  const intervalMs = opts.intervalMs ?? 15_000
  const busy = (opts.busyShare ?? 0.05) * intervalMs * 1000
  const quiet = (opts.quietShare ?? 0.01) * intervalMs * 1000
  const quietTicks = opts.quietTicks ?? 3
  let last = process.cpuUsage()
  let owed = 0
  const timer = setInterval(() => {
    const now = process.cpuUsage()
    const used = now.user - last.user + (now.system - last.system)
    last = now
    if (used > busy) owed = quietTicks
    else if (used < quiet && owed > 0) {
      owed--
      const trim = trimFn()
      if (trim !== undefined) opts.onTrim?.(trim(0))
    }
  }, intervalMs)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
