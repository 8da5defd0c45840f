/**
 * Preloaded into a relay process by bench/relay-heap.ts (`NODE_OPTIONS="--expose-gc --import <this file>"`): on
 * SIGUSR2 it collects garbage (twice, so that finalizers' garbage goes too; with `WARREN_BENCH_PROBE_COMPACT=1` one
 * last-resort collection, which also compacts, as src/relay/server/heap-compact.ts does) and writes where the process's memory is
 * to `$WARREN_BENCH_PROBE_DIR/probe-<k>.json`: `process.memoryUsage()` before and after the collection, V8's heap
 * spaces, the process's PSS and anonymous RSS (/proc/self/smaps_rollup), the kernel's TCP socket memory
 * (/proc/net/sockstat), the largest anonymous mappings (/proc/self/smaps), glibc's `mallinfo2()` before and after a `malloc_trim(0)` (and the PSS after it) and, with `WARREN_BENCH_PROBE_SNAPSHOT=1`, a heap snapshot `probe-<k>.heapsnapshot` written
 * before the JSON. The relay's stderr is copied to `relay.log` there. The JSON file appears last, whole (written then renamed), so a reader waits for it.
 */
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { libc } from './glibc.ts'

const dir = process.env.WARREN_BENCH_PROBE_DIR
const snapshot = process.env.WARREN_BENCH_PROBE_SNAPSHOT === '1'
/** Collect as the relay's compaction does (a last-resort collection) instead of two ordinary ones. */
const compact = process.env.WARREN_BENCH_PROBE_COMPACT === '1'
let taken = 0

/** Fields of smaps_rollup in bytes. */
function rollup(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of readFileSync('/proc/self/smaps_rollup', 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm)) {
    out[m[1]!] = Number(m[2]) * 1024
  }
  return out
}

/** The largest anonymous mappings by resident size (/proc/self/smaps): range, size and Rss in KiB, first 16. */
function largestAnonMaps(): { range: string; sizeKiB: number; rssKiB: number }[] {
  const out: { range: string; sizeKiB: number; rssKiB: number }[] = []
  let cur: { range: string; sizeKiB: number; rssKiB: number; anon: boolean } | undefined
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+-[0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line)
    if (head !== null) {
      if (cur?.anon === true) out.push({ range: cur.range, sizeKiB: cur.sizeKiB, rssKiB: cur.rssKiB })
      const [a, b] = head[1]!.split('-').map((x) => Number.parseInt(x, 16))
      cur = { range: head[1]!, sizeKiB: (b! - a!) / 1024, rssKiB: 0, anon: head[2] === '0' && head[3] === '' }
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && cur !== undefined) cur.rssKiB = Number(rss[1])
  }
  if (cur?.anon === true) out.push({ range: cur.range, sizeKiB: cur.sizeKiB, rssKiB: cur.rssKiB })
  return out.sort((x, y) => y.rssKiB - x.rssKiB).slice(0, 16)
}

/** The `TCP:` line of /proc/net/sockstat: sockets in use and the kernel's socket memory in bytes (pages × 4 KiB). */
function sockstat(): { inuse: number; memBytes: number } {
  const m = /^TCP: inuse (\d+) orphan \d+ tw \d+ alloc \d+ mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))
  return m === null ? { inuse: -1, memBytes: -1 } : { inuse: Number(m[1]), memBytes: Number(m[2]) * 4096 }
}

if (dir !== undefined) {
  // the relay's log, kept for bench/relay-heap.ts's --log
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    appendFileSync(join(dir, 'relay.log'), chunk)
    return write(chunk, ...rest)
  }) as typeof process.stderr.write
  const gc = (globalThis as { gc?: (opts?: object) => void }).gc
  process.on('SIGUSR2', () => {
    const k = taken++
    const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
    const before = process.memoryUsage()
    const smapsBefore = rollup()
    if (compact) gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    else {
      gc?.()
      gc?.()
    }
    const after = process.memoryUsage()
    const smapsAfter = rollup()
    const malloc = libc?.info()
    libc?.trim()
    const mallocTrimmed = libc?.info()
    const smapsTrimmed = rollup()
    if (snapshot) writeHeapSnapshot(join(dir, `probe-${k}.heapsnapshot`))
    const report = {
      before,
      after,
      smapsBefore,
      smapsAfter,
      malloc,
      mallocTrimmed,
      smapsTrimmed,
      spaces: getHeapSpaceStatistics().map((s) => ({
        name: s.space_name,
        size: s.space_size,
        used: s.space_used_size,
        physical: s.physical_space_size,
      })),
      heap: getHeapStatistics(),
      sockstat: sockstat(),
      anonMaps: largestAnonMaps(),
      handles: handles.length,
      sockets: handles.filter((h) => (h as object).constructor?.name === 'Socket').length,
    }
    const file = join(dir, `probe-${k}.json`)
    writeFileSync(`${file}.tmp`, JSON.stringify(report))
    renameSync(`${file}.tmp`, file)
  })
}
