/**
 * Preloaded into `warren up` daemons (`NODE_OPTIONS="--import <this file>"` with `WARREN_BENCH_PROBE_DIR` set, in the
 * environment of `node bench/peers.ts`, which passes it on to the daemons it starts): on SIGUSR2 it writes where the
 * daemon's memory is to `$WARREN_BENCH_PROBE_DIR/daemon-<pid>-<k>.json`, in three steps, each with the PSS of the
 * process by kind of mapping (/proc/self/smaps: glibc's main heap `[heap]`, anonymous mappings, file-backed ones),
 * `process.memoryUsage()`, V8's heap spaces and glibc's `mallinfo2()`:
 *
 * - `asIs`: as the daemon left it;
 * - `trimmed`: after `malloc_trim(0)`;
 * - `collected`: after a last-resort garbage collection (with `--expose-gc` in NODE_OPTIONS; `collectMs` is how long
 *   it took) and another trim.
 *
 * Other processes that load it (the bench itself, its clients) do nothing. The JSON file appears whole (written then
 * renamed).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getHeapSpaceStatistics } from 'node:v8'
import { libc } from './glibc.ts'

const dir = process.env.WARREN_BENCH_PROBE_DIR
const isDaemon = process.argv.slice(2).includes('up') && process.env.WARREN_NODE_TUNED !== undefined

/** PSS in bytes of the process's mappings by kind: `heap` ([heap]), `anon` (no file), `file`, `other` ([stack] …). */
function pssByKind(): Record<string, number> {
  const out: Record<string, number> = { heap: 0, anon: 0, file: 0, other: 0, total: 0 }
  let kind = 'other'
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head !== null) {
      const name = head[1]!.trim()
      kind = name === '[heap]' ? 'heap' : name === '' ? 'anon' : name.startsWith('/') ? 'file' : 'other'
      continue
    }
    const m = /^Pss:\s+(\d+) kB/.exec(line)
    if (m !== null) {
      out[kind]! += Number(m[1]) * 1024
      out.total! += Number(m[1]) * 1024
    }
  }
  return out
}

function reading(): Record<string, unknown> {
  const spaces = getHeapSpaceStatistics()
  return {
    pss: pssByKind(),
    memory: process.memoryUsage(),
    v8: {
      committed: spaces.reduce((s, x) => s + x.physical_space_size, 0),
      used: spaces.reduce((s, x) => s + x.space_used_size, 0),
      spaces: Object.fromEntries(spaces.map((s) => [s.space_name, [s.physical_space_size, s.space_used_size]])),
    },
    malloc: libc?.info(),
  }
}

if (dir !== undefined && isDaemon) {
  const gc = (globalThis as { gc?: (opts?: object) => void }).gc
  let taken = 0
  process.on('SIGUSR2', () => {
    const k = taken++
    const asIs = reading()
    libc?.trim()
    const trimmed = reading()
    const t0 = performance.now()
    gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    const collectMs = performance.now() - t0
    libc?.trim()
    const collected = reading()
    const file = join(dir, `daemon-${process.pid}-${k}.json`)
    writeFileSync(`${file}.tmp`, JSON.stringify({ pid: process.pid, asIs, trimmed, collected, collectMs }))
    renameSync(`${file}.tmp`, file)
  })
}
