/**
 * `node bench/relay-heap.ts`: where a relay's bytes per idle reservation go. Runs bench/relay.ts's idle-reservation
 * series (a real `warren relay` process, light clients from bench/relay-reserver.ts) with bench/relay-probe.ts
 * preloaded into the relay; at each point the probe collects garbage and reports `process.memoryUsage()`, V8's heap
 * spaces, PSS and anonymous RSS, and the kernel's TCP memory. Per reservation (first point to last):
 *
 * - PSS as the process's pages are (what bench/relay.ts's slope measures), and after a full collection;
 * - live JS heap (heapUsed after the collection), V8's committed heap (heapTotal), ArrayBuffers, other external;
 * - native: anonymous RSS not accounted for by V8's heap or ArrayBuffers (malloc: libuv, OpenSSL, sockets), and
 *   glibc's own view: bytes malloc'd and in use, free inside its arenas, mmapped; PSS after `malloc_trim(0)`;
 * - kernel: TCP socket memory (both ends of each loopback connection, so halved) — outside the relay's PSS.
 *
 * With `--snapshot`, a heap snapshot at the first and last point gives the live heap per reservation by object
 * kind (constructor name; self sizes), the top `--top` rows.
 *
 *   node bench/relay-heap.ts [--reservations 1000] [--step 500] [--settle-ms 20000] [--identify] [--snapshot] [--top 40]
 *     [--relay-env K=V,K=V] [--node-options '--max-old-space-size=512'] [--exec-argv '--optimize-for-size']
 *     [--log relay.log] [--keep-snapshots dir] [--out file.json]
 */
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { helpIfAsked } from './help.ts'
import { runRelayBench } from './relay.ts'
import { formatTable } from './stats.ts'

const PROBE = fileURLToPath(new URL('relay-probe.ts', import.meta.url))

interface Probe {
  before: NodeJS.MemoryUsage
  after: NodeJS.MemoryUsage
  smapsBefore: Record<string, number>
  smapsAfter: Record<string, number>
  /** glibc's view (mallinfo2) after the collection, before and after malloc_trim(0); absent off glibc. */
  malloc?: { arena: number; hblkhd: number; uordblks: number; fordblks: number }
  mallocTrimmed?: { arena: number; hblkhd: number; uordblks: number; fordblks: number }
  smapsTrimmed: Record<string, number>
  sockstat: { inuse: number; memBytes: number }
  handles: number
  /** Open net.Sockets: one per client connection (checks that the relay holds what the clients think). */
  sockets: number
  heap: Record<string, number>
}

/** Live heap by object kind: key → [count, self bytes]. */
export type HeapKinds = Map<string, [number, number]>

/** Reads a .heapsnapshot and sums self sizes by node type and constructor name (`object:Socket`, `closure`, …). */
export async function heapKinds(file: string): Promise<HeapKinds> {
  const snap = JSON.parse(await readFile(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }
    nodes: number[]
    strings: string[]
  }
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number]
  const out: HeapKinds = new Map()
  const named = new Set(['object', 'native', 'closure', 'hidden', 'synthetic'])
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!
    const name = snap.strings[snap.nodes[i + iName]!]!
    const key = named.has(type) ? `${type}:${type === 'closure' ? name || '(anonymous)' : name}` : type
    const row = out.get(key) ?? [0, 0]
    row[0]++
    row[1] += snap.nodes[i + iSize]!
    out.set(key, row)
  }
  return out
}

async function waitFor(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no ${file} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

export interface HeapBreakdown {
  reservations: number
  /** Bytes per reservation, first point to last. */
  perReservation: Record<string, number>
  points: { held: number; probe: Probe }[]
  /** Live heap per reservation by object kind, largest first (with --snapshot). */
  kinds?: { kind: string; countPer: number; bytesPer: number }[]
}

export async function relayHeap(o: {
  reservations: number
  step: number
  snapshot: boolean
  settleMs: number
  /** Light clients that run identify and ping, as Warren nodes do. */
  identify: boolean
  relayEnv: NodeJS.ProcessEnv
  nodeOptions?: string
  execArgv?: string[]
  /** Where to copy the relay's log (its stderr) to. */
  logTo?: string
  /** A directory to copy the first and last heap snapshot to (with `snapshot`). */
  keepSnapshots?: string
  log: (m: string) => void
}): Promise<HeapBreakdown> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-relayheap-'))
  const points: { held: number; probe: Probe }[] = []
  let k = 0
  try {
    await runRelayBench({
      mib: 0,
      reps: 0,
      reservations: o.reservations,
      step: o.step,
      settleMs: o.settleMs,
      reserverIdentify: o.identify,
      variants: [],
      throughput: false,
      idle: true,
      relayNodeOptions: ['--expose-gc', `--import=${PROBE}`, ...(o.nodeOptions ? [o.nodeOptions] : [])].join(' '),
      ...(o.execArgv === undefined ? {} : { relayExecArgv: o.execArgv }),
      relayEnv: {
        ...o.relayEnv,
        WARREN_BENCH_PROBE_DIR: dir,
        ...(o.snapshot ? { WARREN_BENCH_PROBE_SNAPSHOT: '1' } : {}),
      },
      onPoint: async (held, pid) => {
        const file = join(dir, `probe-${k++}.json`)
        process.kill(pid, 'SIGUSR2')
        await waitFor(file, 300_000)
        const probe = JSON.parse(await readFile(file, 'utf8')) as Probe
        points.push({ held, probe })
        const mib = (b: number): string => (b / 2 ** 20).toFixed(1)
        o.log(
          `probe at ${held}: PSS ${mib(probe.smapsBefore.Pss!)} → ${mib(probe.smapsAfter.Pss!)} MiB after GC, ` +
            `heapUsed ${mib(probe.after.heapUsed)}, heapTotal ${mib(probe.after.heapTotal)}, ` +
            `external ${mib(probe.after.external)}, arrayBuffers ${mib(probe.after.arrayBuffers)} MiB, ` +
            `${probe.sockets} sockets`,
        )
      },
      log: o.log,
    })
    const first = points[0]!
    const last = points.at(-1)!
    const n = last.held - first.held
    const d = (f: (p: Probe) => number): number => Math.round((f(last.probe) - f(first.probe)) / n)
    const perReservation = {
      pss: d((p) => p.smapsBefore.Pss!),
      pssAfterGc: d((p) => p.smapsAfter.Pss!),
      anonRss: d((p) => p.smapsAfter.Anonymous!),
      heapUsedLive: d((p) => p.after.heapUsed),
      heapUsedBeforeGc: d((p) => p.before.heapUsed),
      heapTotal: d((p) => p.after.heapTotal),
      arrayBuffers: d((p) => p.after.arrayBuffers),
      externalOther: d((p) => p.after.external - p.after.arrayBuffers),
      native: d((p) => p.smapsAfter.Anonymous! - p.after.heapTotal - p.after.arrayBuffers),
      mallocInUse: d((p) => p.malloc?.uordblks ?? 0),
      mallocFree: d((p) => p.malloc?.fordblks ?? 0),
      mallocMmapped: d((p) => p.malloc?.hblkhd ?? 0),
      pssAfterTrim: d((p) => p.smapsTrimmed.Pss!),
      kernelTcpHalf: Math.round((last.probe.sockstat.memBytes - first.probe.sockstat.memBytes) / n / 2),
      socketsPer: Number(((last.probe.sockets - first.probe.sockets) / n).toFixed(3)),
      v8Physical: d((p) => p.heap.total_physical_size!),
      v8Malloced: d((p) => p.heap.malloced_memory!),
    }
    const result: HeapBreakdown = { reservations: n, perReservation, points }
    if (o.snapshot) {
      const a = await heapKinds(join(dir, 'probe-0.heapsnapshot'))
      const b = await heapKinds(join(dir, `probe-${k - 1}.heapsnapshot`))
      const kinds = [...new Set([...a.keys(), ...b.keys()])].map((kind) => {
        const [c0, s0] = a.get(kind) ?? [0, 0]
        const [c1, s1] = b.get(kind) ?? [0, 0]
        return { kind, countPer: Number(((c1 - c0) / n).toFixed(2)), bytesPer: Math.round((s1 - s0) / n) }
      })
      result.kinds = kinds.sort((x, y) => y.bytesPer - x.bytesPer)
      if (o.keepSnapshots !== undefined) {
        for (const name of ['probe-0.heapsnapshot', `probe-${k - 1}.heapsnapshot`]) {
          await copyFile(join(dir, name), join(o.keepSnapshots, name))
        }
      }
    }
    return result
  } finally {
    if (o.logTo !== undefined) await copyFile(join(dir, 'relay.log'), o.logTo).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

export function heapTable(r: HeapBreakdown, top: number): string {
  const rows = [['bytes per reservation', 'B']]
  for (const [k, v] of Object.entries(r.perReservation)) rows.push([k, String(v)])
  let out = formatTable(rows)
  if (r.kinds !== undefined) {
    const kindRows = [['live heap kind', 'count / res.', 'B / res.']]
    for (const x of r.kinds.slice(0, top)) kindRows.push([x.kind, String(x.countPer), String(x.bytesPer)])
    const sum = r.kinds.reduce((s, x) => s + x.bytesPer, 0)
    kindRows.push(['(all kinds)', '', String(sum)])
    out += `\n${formatTable(kindRows)}`
  }
  return out
}

if (import.meta.url === `file://${process.argv[1]}`) {
  helpIfAsked(import.meta.url)
  const { values: args } = parseArgs({
    options: {
      reservations: { type: 'string', default: '1000' },
      step: { type: 'string', default: '500' },
      snapshot: { type: 'boolean', default: false },
      'settle-ms': { type: 'string', default: '20000' },
      identify: { type: 'boolean', default: false },
      top: { type: 'string', default: '40' },
      'relay-env': { type: 'string', default: '' },
      'node-options': { type: 'string' },
      'exec-argv': { type: 'string' },
      log: { type: 'string' },
      'keep-snapshots': { type: 'string' },
      out: { type: 'string' },
    },
  })
  const relayEnv = Object.fromEntries(
    args['relay-env']
      .split(',')
      .filter((s) => s.includes('='))
      .map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]),
  )
  const r = await relayHeap({
    reservations: Number(args.reservations),
    step: Number(args.step),
    snapshot: args.snapshot,
    settleMs: Number(args['settle-ms']),
    identify: args.identify,
    relayEnv,
    ...(args['node-options'] === undefined ? {} : { nodeOptions: args['node-options'] }),
    ...(args.log === undefined ? {} : { logTo: args.log }),
    ...(args['keep-snapshots'] === undefined ? {} : { keepSnapshots: args['keep-snapshots'] }),
    ...(args['exec-argv'] === undefined ? {} : { execArgv: args['exec-argv'].split(' ').filter(Boolean) }),
    log: (m) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`),
  })
  process.stdout.write(`${heapTable(r, Number(args.top))}\n`)
  if (args.out !== undefined) await writeFile(args.out, `${JSON.stringify({ settings: args, ...r }, null, 2)}\n`)
}
