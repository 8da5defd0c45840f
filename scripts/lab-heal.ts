/**
 * `npm run lab:heal`: how Warren's paths heal, in the NAT lab with real processes (needs root).
 *
 * ```
 * npm run lab:heal -- [--mib 64] [--rounds 5] [--pings 20] [--fault-runs 10]
 *                     [--fault-kinds relay-killed,relay-blackholed,nat-rebinding] [--out bench/results/<date>-lab-heal.json]
 * ```
 *
 * 1. Direct vs relayed, alternating: one cone × cone lab (two `warren relay` processes); once the direct path is up,
 *    `--mib` over it, then `--rounds` times the same over the relayed connection (which stays open) and again over the
 *    direct one: direct, relayed, direct, … (so load on the machine falls on both alike). Each transfer counts when
 *    Warren's path report and the routers' counters agree on its path and B's SHA-256 equals A's. Round trips: the
 *    ping protocol over both connections, taken in turns (`--pings` each).
 * 2. Time to reach a node again after a fault (test/lab/fixtures/fault-timing.ts), `--fault-runs` fresh labs per kind:
 *    B's home relay process killed, B's home relay host blackholed (no RST), the symmetric NAT in front of B flushing
 *    its conntrack table under a direct path. p50 and max of the time from the fault to the first intact new
 *    connection (bounded by 30 s per run).
 *
 * Prints Markdown tables and writes them with every sample to `--out`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { quantile } from '../bench/stats.ts'
import { FAULT_KINDS, type FaultKind, timeToReachAgain } from '../test/lab/fixtures/fault-timing.ts'
import { type LabPairLeg, runLabPair } from '../test/support/lab-pair-run.ts'

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '5' },
    pings: { type: 'string', default: '20' },
    'fault-runs': { type: 'string', default: '10' },
    'fault-kinds': { type: 'string', default: FAULT_KINDS.join(',') },
    out: { type: 'string' },
  },
})
const bytes = Number(values.mib) * 1024 * 1024
const rounds = Number(values.rounds)
const faultRuns = Number(values['fault-runs'])
const kinds = values['fault-kinds']
  .split(',')
  .filter((k): k is FaultKind => (FAULT_KINDS as readonly string[]).includes(k))

const r1 = (x: number): number => Math.round(x * 10) / 10
const p50 = (xs: number[]): number | undefined => (xs.length === 0 ? undefined : quantile(xs, 0.5))
const fmt = (n: number | undefined, digits = 0): string => (n === undefined ? '-' : n.toFixed(digits))

interface Transfer {
  /** Which connection it took, as sent. */
  over: 'direct' | 'relayed'
  /** The path both witnesses agree on; absent when they disagree. */
  proven?: 'direct' | 'relayed'
  correct: boolean
  mibps: number
}

/** Part 1: the alternating transfers and round trips of one cone × cone lab. */
async function alternating(): Promise<{ transfers: Transfer[]; rtt: { direct?: number[]; relayed?: number[] } }> {
  const run = await runLabPair({
    natA: 'cone',
    natB: 'cone',
    bytes,
    waitDirectMs: 12_000,
    pings: Number(values.pings),
    alternate: rounds,
  })
  const transfers = run.legs.map(
    (l: LabPairLeg): Transfer => ({
      over: l.over === 'relay' ? 'relayed' : 'direct',
      ...(l.proven === undefined ? {} : { proven: l.proven }),
      correct: l.correct,
      mibps: r1(l.mibps),
    }),
  )
  for (const [i, t] of transfers.entries()) {
    console.error(
      `transfer ${i + 1}/${transfers.length} over the ${t.over} connection: ${t.mibps} MiB/s, ` +
        `${t.proven === t.over ? 'path proven' : `PATH NOT PROVEN (${t.proven ?? 'witnesses disagree'})`}, ${t.correct ? 'intact' : 'CORRUPT'}`,
    )
  }
  return { transfers, rtt: run.rtt }
}

const part1 = await alternating().catch((err: unknown) => {
  console.error(`alternating transfers failed: ${(err as Error).message.split('\n')[0]}`)
  return {
    transfers: [] as Transfer[],
    rtt: {} as { direct?: number[]; relayed?: number[] },
    error: (err as Error).message,
  }
})
const good = (path: 'direct' | 'relayed'): number[] =>
  part1.transfers.filter((t) => t.over === path && t.proven === path && t.correct).map((t) => t.mibps)
/** Each relayed transfer against the direct one right before it. */
const ratios = part1.transfers.flatMap((t, i) => {
  const before = part1.transfers[i - 1]
  return t.over === 'relayed' && before?.over === 'direct' && t.proven === 'relayed' && before.proven === 'direct'
    ? [before.mibps / t.mibps]
    : []
})
const pathRow = (path: 'direct' | 'relayed'): string => {
  const xs = good(path)
  const n = part1.transfers.filter((t) => t.over === path).length
  const rtt = part1.rtt[path] ?? []
  return `| ${path} | ${xs.length}/${n} | ${fmt(p50(xs), 1)} | ${fmt(xs.length > 0 ? Math.min(...xs) : undefined, 1)}-${fmt(xs.length > 0 ? Math.max(...xs) : undefined, 1)} | ${fmt(p50(rtt), 2)} | ${fmt(rtt.length > 0 ? Math.max(...rtt) : undefined, 2)} |`
}
const pathTable = [
  `| path (cone × cone, ${values.mib} MiB each, alternating) | proven and intact | MiB/s p50 | MiB/s min-max | RTT p50 (ms) | RTT max (ms) |`,
  '|---|---|---|---|---|---|',
  pathRow('direct'),
  pathRow('relayed'),
  `| direct ÷ relayed, each pair in turn | ${ratios.length} pairs | ×${fmt(p50(ratios), 2)} | ×${fmt(ratios.length > 0 ? Math.min(...ratios) : undefined, 2)}-×${fmt(ratios.length > 0 ? Math.max(...ratios) : undefined, 2)} | | |`,
].join('\n')

const faults: { kind: FaultKind; ms: (number | null)[] }[] = []
for (const kind of faultRuns > 0 ? kinds : []) {
  const ms: (number | null)[] = []
  for (let i = 0; i < faultRuns; i++) {
    const t = await timeToReachAgain(kind).catch((err: unknown) => {
      console.error(`${kind} run ${i + 1}: ${(err as Error).message.split('\n')[0]}`)
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

console.log(`${pathTable}${faults.length > 0 ? `\n\n${faultTable}` : ''}`)
const file = values.out ?? `bench/results/${new Date().toISOString().slice(0, 10)}-lab-heal.json`
await mkdir(dirname(file), { recursive: true })
await writeFile(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), bytes, rounds, part1, ratios, pathTable, faults, faultTable }, null, 2)}\n`,
)
console.error(`wrote ${file}`)
