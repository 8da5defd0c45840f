/**
 * `npm run lab`: the NAT matrix with real Warren nodes and repetitions (the test suite runs one of each), and the
 * direct-vs-relayed benchmark measured in the same runs.
 *
 * ```
 * npm run lab -- [--runs 20] [--mib 64] [--pairs cone:cone,cone:symmetric,symmetric:symmetric] [--pings 20]
 *                [--no-compare] [--fault-runs 10] [--fault-kinds relay-killed,relay-blackholed,nat-rebinding]
 *                [--portmap-runs 5] [--out bench/results/<date>-lab.json]
 * ```
 *
 * For every pair of NAT kinds: a fresh lab (network namespaces, 198.18.0.0/15 only), two `warren relay` processes,
 * node B serving a hash service and node A sending to it by ticket after the direct-path upgrade settled. A transfer
 * is direct when Warren reports a direct path AND the routers forwarded the bytes to each other; relayed when Warren
 * reports the relay AND the bytes went through it; correct when B's SHA-256 equals A's.
 *
 * Per run also: round trips (ping protocol, `--pings` per path, taken in turns) over the direct connection and over
 * the relayed one, which stays open after the upgrade; with `--compare` (default) a run that went direct also sends
 * the same `--mib` over the relayed connection, so both throughputs come from the same run (the order alternates by
 * run); and the CPU time of the relays and both nodes around each transfer (/proc/<pid>/stat), as CPU-seconds per Gbit
 * moved. Then, `--fault-runs` times per fault kind (0: none), the time to reach node B again after the fault: B's home
 * relay killed, B's home relay host blackholed, the symmetric NAT's conntrack flushed under a direct path
 * (test/lab/fixtures/fault-timing.ts), p50 and max. Then, `--portmap-runs` times per pair and setting (0: none), the
 * matrix with both routers running miniupnpd (PCP, NAT-PMP, UPnP IGD) and the nodes' port mapping on, then off:
 * direct runs, how the path was made, time to direct, and the share of the bytes that went through a relay.
 * Prints Markdown tables and writes them with every run to `--out`
 * (default bench/results/<date>-lab.json).
 * Needs root.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { quantile } from '../bench/stats.ts'
import type { NatKind } from '../src/testing/natlab/index.ts'
import { FAULT_KINDS, timeToReachAgain } from '../test/lab/fixtures/fault-timing.ts'
import { type LabPairLeg as PairLeg, runLabPair as runWarrenPair } from '../test/support/lab-pair-run.ts'
import { portmapMatrix } from './lab-portmap.ts'

const { values } = parseArgs({
  allowNegative: true,
  options: {
    runs: { type: 'string', default: '20' },
    mib: { type: 'string', default: '64' },
    pairs: { type: 'string', default: 'cone:cone,cone:symmetric,symmetric:cone,symmetric:symmetric' },
    pings: { type: 'string', default: '20' },
    compare: { type: 'boolean', default: true },
    'fault-runs': { type: 'string', default: '10' },
    'fault-kinds': { type: 'string', default: 'relay-killed,relay-blackholed,nat-rebinding' },
    'portmap-runs': { type: 'string', default: '5' },
    out: { type: 'string' },
  },
})
const runs = Number(values.runs)
const bytes = Number(values.mib) * 1024 * 1024
const pings = Number(values.pings)
const pairs = values.pairs.split(',').map((p) => p.split(':') as [NatKind, NatKind])

/** CPU-seconds per Gbit of payload, per process. */
type CpuPerGbit = Record<string, number>

interface Leg {
  over: 'best' | 'relay'
  /** The path by Warren's report AND the routers' counters; absent when they disagree. */
  proven?: 'direct' | 'relayed'
  correct: boolean
  mibps: number
  cpuSPerGbit: CpuPerGbit
}

interface Run {
  direct: boolean
  relayed: boolean
  /** Every transfer of the run arrived intact. */
  correct: boolean
  toDirectMs?: number
  /** How the direct path was made (`tcp`, `tcp-birthday`, `simultaneous`, `birthday-easy`, …), when it was. */
  plan?: string
  /** Throughput of the main transfer (the path new streams take). */
  mibps?: number
  /** p50 round trip in ms over each path. */
  rttMs?: { direct?: number; relayed?: number }
  legs?: Leg[]
  error?: string
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000
const p50 = (xs: number[]): number | undefined => (xs.length === 0 ? undefined : quantile(xs, 0.5))
const fmt = (n: number | undefined, digits = 0): string => (n === undefined ? '-' : n.toFixed(digits))

function legOf(l: PairLeg): Leg {
  const gbit = (l.bytes * 8) / 1e9
  const cpuSPerGbit: CpuPerGbit = { a: r3(l.cpuS.a! / gbit), b: r3(l.cpuS.b! / gbit) }
  if (l.relayHost !== undefined) cpuSPerGbit.relay = r3(l.cpuS[l.relayHost]! / gbit)
  return {
    over: l.over,
    ...(l.proven === undefined ? {} : { proven: l.proven }),
    correct: l.correct,
    mibps: r3(l.mibps),
    cpuSPerGbit,
  }
}

async function oneRun(natA: NatKind, natB: NatKind, i: number): Promise<Run> {
  const run = await runWarrenPair({
    natA,
    natB,
    bytes,
    waitDirectMs: 12_000,
    pings,
    ...(values.compare ? { compareBytes: bytes, relayFirst: i % 2 === 1 } : {}),
  })
  const legs = run.legs.map(legOf)
  const main = legOf(run.main)
  const rttMs: Run['rttMs'] = {}
  if (run.rtt.direct !== undefined) rttMs.direct = r3(p50(run.rtt.direct)!)
  if (run.rtt.relayed !== undefined) rttMs.relayed = r3(p50(run.rtt.relayed)!)
  const toDirectMs = run.result.toDirectMs
  const plan = (run.result.upgrade as { state?: string; plan?: string } | undefined)?.plan
  return {
    direct: main.proven === 'direct',
    relayed: main.proven === 'relayed',
    correct: legs.every((l) => l.correct),
    ...(typeof toDirectMs === 'number' ? { toDirectMs: r3(toDirectMs) } : {}),
    ...(main.proven === 'direct' && plan !== undefined ? { plan } : {}),
    mibps: main.mibps,
    rttMs,
    legs,
  }
}

const rows: { pair: string; runs: Run[] }[] = []
for (const [natA, natB] of pairs) {
  const results: Run[] = []
  for (let i = 0; i < runs; i++) {
    try {
      results.push(await oneRun(natA, natB, i))
    } catch (err) {
      results.push({ direct: false, relayed: false, correct: false, error: (err as Error).message.split('\n')[0] })
    }
    const last = results.at(-1)!
    const other = last.legs?.find((l) => l.over === 'relay')
    console.error(
      `${natA} x ${natB} run ${i + 1}/${runs}: ${last.direct ? `direct (${last.plan ?? '?'})` : last.relayed ? 'relayed' : 'NEITHER'}` +
        ` ${last.correct ? 'correct' : 'WRONG'} ${fmt(last.mibps, 1)} MiB/s` +
        `${other ? `, relayed ${fmt(other.mibps, 1)} MiB/s${other.proven === 'relayed' ? '' : ' (NOT PROVEN)'}` : ''}` +
        ` rtt ${fmt(last.rttMs?.direct, 2)} / ${fmt(last.rttMs?.relayed, 2)} ms${last.error ? ` (${last.error})` : ''}`,
    )
  }
  rows.push({ pair: `${natA} × ${natB}`, runs: results })
}

/** Legs of these runs proven on `path` and intact. */
const provenLegs = (rs: Run[], path: 'direct' | 'relayed'): Leg[] =>
  rs.flatMap((r) => r.legs ?? []).filter((l) => l.proven === path && l.correct)

/** Runs with a proven direct main transfer and a proven relayed one: how many had direct ≥ relayed, the p50 ratio. */
function sameRun(rs: Run[]): string {
  const ratios = rs.flatMap((r) => {
    const d = r.legs?.find((l) => l.over === 'best' && l.proven === 'direct' && l.correct)
    const v = r.legs?.find((l) => l.over === 'relay' && l.proven === 'relayed' && l.correct)
    return d && v ? [d.mibps / v.mibps] : []
  })
  if (ratios.length === 0) return '-'
  return `${ratios.filter((x) => x >= 1).length}/${ratios.length} (×${fmt(p50(ratios), 2)})`
}

/** How the direct runs were made: `tcp 19, birthday-easy 1`. */
function plans(rs: Run[]): string {
  const count = new Map<string, number>()
  for (const r of rs) if (r.plan !== undefined) count.set(r.plan, (count.get(r.plan) ?? 0) + 1)
  return count.size === 0 ? '-' : [...count].map(([k, v]) => `${k} ${v}`).join(', ')
}

const cpu = (legs: Leg[], who: string): number | undefined =>
  p50(legs.flatMap((l) => (l.cpuSPerGbit[who] === undefined ? [] : [l.cpuSPerGbit[who]])))

const table = [
  '| NAT A × B | direct | relayed | correct | direct paths made by | time to direct p50 / max (ms) | RTT p50 direct / relayed (ms) | MiB/s direct p50 | MiB/s relayed p50 | direct ≥ relayed, same run (p50 ratio) |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(({ pair, runs: rs }) => {
    const t = rs.flatMap((r) => (r.toDirectMs === undefined ? [] : [r.toDirectMs]))
    const rttD = rs.flatMap((r) => (r.rttMs?.direct === undefined ? [] : [r.rttMs.direct]))
    const rttR = rs.flatMap((r) => (r.rttMs?.relayed === undefined ? [] : [r.rttMs.relayed]))
    const dm = provenLegs(rs, 'direct').map((l) => l.mibps)
    const rm = provenLegs(rs, 'relayed').map((l) => l.mibps)
    const n = rs.length
    return `| ${pair} | ${rs.filter((r) => r.direct).length}/${n} | ${rs.filter((r) => r.relayed).length}/${n} | ${rs.filter((r) => r.correct).length}/${n} | ${plans(rs)} | ${fmt(p50(t))} / ${fmt(t.length > 0 ? Math.max(...t) : undefined)} | ${fmt(p50(rttD), 2)} / ${fmt(p50(rttR), 2)} | ${fmt(p50(dm), 1)} | ${fmt(p50(rm), 1)} | ${sameRun(rs)} |`
  }),
].join('\n')

const cpuTable = [
  '| NAT A × B | relay CPU s per relayed Gbit p50 | A CPU s/Gbit direct / relayed | B CPU s/Gbit direct / relayed |',
  '|---|---|---|---|',
  ...rows.map(({ pair, runs: rs }) => {
    const d = provenLegs(rs, 'direct')
    const v = provenLegs(rs, 'relayed')
    return `| ${pair} | ${fmt(cpu(v, 'relay'), 2)} | ${fmt(cpu(d, 'a'), 2)} / ${fmt(cpu(v, 'a'), 2)} | ${fmt(cpu(d, 'b'), 2)} / ${fmt(cpu(v, 'b'), 2)} |`
  }),
].join('\n')

const faultRuns = Number(values['fault-runs'])
const faults: { kind: string; ms: (number | null)[] }[] = []
const kinds = values['fault-kinds'].split(',')
for (const kind of faultRuns > 0 ? FAULT_KINDS.filter((k) => kinds.includes(k)) : []) {
  const ms: (number | null)[] = []
  for (let i = 0; i < faultRuns; i++) {
    const t = await timeToReachAgain(kind).catch((err: unknown) => {
      console.error(`${kind} run ${i + 1}: ${(err as Error).message}`)
      return undefined
    })
    ms.push(t ?? null)
    console.error(`${kind} run ${i + 1}/${faultRuns}: ${t === undefined ? 'not reached in 30 s' : `${t} ms`}`)
  }
  faults.push({ kind, ms })
}
const faultTable = [
  '| fault | reached again | time to reach again p50 / max (ms) |',
  '|---|---|---|',
  ...faults.map(({ kind, ms }) => {
    const ok = ms.filter((m): m is number => m !== null)
    return `| ${kind} | ${ok.length}/${ms.length} | ${fmt(p50(ok))} / ${fmt(ok.length > 0 ? Math.max(...ok) : undefined)} |`
  }),
].join('\n')

const portmap = await portmapMatrix(pairs, Number(values['portmap-runs']), bytes)

console.log(
  `${table}\n\n${cpuTable}${faults.length > 0 ? `\n\n${faultTable}` : ''}${portmap.rows.length > 0 ? `\n\n${portmap.table}` : ''}`,
)
const file = values.out ?? `bench/results/${new Date().toISOString().slice(0, 10)}-lab.json`
await mkdir(dirname(file), { recursive: true })
await writeFile(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), runs, bytes, pings, compare: values.compare, rows, table, cpuTable, faults, faultTable, portmap }, null, 2)}\n`,
)
console.error(`wrote ${file}`)
