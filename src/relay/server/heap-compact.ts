/**
 * Compacts the relay's V8 heap once the number of its connections has moved and settled. A relay's idle connections
 * are objects scattered over V8's pages among the garbage of their handshakes; an ordinary full collection frees the
 * garbage but keeps every page that still holds one live object, so the committed heap stayed ~3x the live heap
 * (~70 KiB per idle reservation against ~25 KiB live, docs/performance.md). A last-resort collection (what V8 does
 * under memory pressure) moves the survivors together and gives the emptied pages back.
 *
 * The trigger is the connection count, not CPU time: thousands of idle nodes pinging their relay keep it busy for
 * good. Every `tickMs` the count is read; once it differs from the count at the last compaction by `minChange`
 * (and 5%) and moved by less than 1% over the last tick, the heap is compacted and `after` runs (the daemon hands
 * freed native memory back there), at most once per `minIntervalMs` (15 s). A compaction stops the relay for about 120 ms
 * per 100 MiB of live heap (~0.3 s at 10,000 idle reservations).
 *
 * It needs `gc`, which `warren relay` gets from `--expose-gc` (bin/warren.js); without it nothing is started.
 */
import type { WarrenLibp2p } from '../../p2p/create.ts'

type Gc = (opts?: {
  type?: 'major' | 'minor'
  execution?: 'sync' | 'async'
  flavor?: 'regular' | 'last-resort'
}) => void

export interface HeapCompactionOptions {
  tickMs?: number
  minIntervalMs?: number
  /** Connections opened or closed since the last compaction before another one is considered. */
  minChange?: number
  /** Runs after each compaction (e.g. malloc_trim). */
  after?: () => void
  /** V8's `gc` (default: the global one `--expose-gc` gives). */
  gc?: Gc
  /** What is counted (default: the open connections; the relay adds its parked ones, whose objects are let go). */
  count?: () => number
}

export interface HeapCompaction {
  /** Compactions run since the start. */
  readonly runs: number
  stop(): void
}

/** One last-resort major collection, which compacts the old generation. */
export function compactHeap(gc: Gc): void {
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
}

export function startHeapCompaction(
  libp2p: Pick<WarrenLibp2p, 'getConnections'>,
  opts: HeapCompactionOptions = {},
): HeapCompaction | undefined {
  const gc = opts.gc ?? (globalThis as { gc?: Gc }).gc
  if (gc === undefined) return undefined
  const tickMs = opts.tickMs ?? 5_000
  const minIntervalMs = opts.minIntervalMs ?? 15_000
  const minChange = opts.minChange ?? 64
  const count = opts.count ?? (() => libp2p.getConnections().length)
  let atLast = count()
  let previous = atLast
  let lastAt = Number.NEGATIVE_INFINITY
  let runs = 0
  const timer = setInterval(() => {
    const now = count()
    const moved = Math.abs(now - previous)
    previous = now
    const change = Math.abs(now - atLast)
    if (change < Math.max(minChange, atLast * 0.05) || moved > Math.max(8, now * 0.01)) return
    if (performance.now() - lastAt < minIntervalMs) return
    compactHeap(gc)
    opts.after?.()
    atLast = now
    lastAt = performance.now()
    runs++
  }, tickMs)
  timer.unref()
  return {
    get runs() {
      return runs
    },
    stop: () => clearInterval(timer),
  }
}
