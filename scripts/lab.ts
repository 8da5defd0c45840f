/**
 * `npm run lab`: the NAT matrix with real Warren nodes and repetitions (the test suite runs one of each).
 *
 * ```
 * npm run lab -- [--runs 20] [--mib 64] [--pairs cone:cone,cone:symmetric,symmetric:symmetric]
 * ```
 *
 * For every pair of NAT kinds: a fresh lab (network namespaces, 198.18.0.0/15 only), two `warren relay` processes,
 * node B serving a hash service and node A sending to it by ticket after the direct-path upgrade settled. A run is
 * direct when Warren reports a direct path AND the routers forwarded the bytes to each other; relayed when Warren
 * reports the relay AND the bytes went through it; correct when B's SHA-256 equals A's. Prints a Markdown table and
 * writes bench/results/<date>-lab.json. Needs root.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import type { NatKind } from '../src/testing/natlab/index.ts'
import { runWarrenPair } from '../test/lab/warren-pair.ts'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    mib: { type: 'string', default: '64' },
    pairs: { type: 'string', default: 'cone:cone,cone:symmetric,symmetric:cone,symmetric:symmetric' },
  },
})
const runs = Number(values.runs)
const bytes = Number(values.mib) * 1024 * 1024
const pairs = values.pairs.split(',').map((p) => p.split(':') as [NatKind, NatKind])

interface Run {
  direct: boolean
  relayed: boolean
  correct: boolean
  toDirectMs?: number
  mibps?: number
  error?: string
}

const pct = (xs: number[], p: number): number | undefined =>
  xs.length === 0
    ? undefined
    : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]
const fmt = (n: number | undefined, digits = 0): string => (n === undefined ? '-' : n.toFixed(digits))

const rows: { pair: string; runs: Run[] }[] = []
for (const [natA, natB] of pairs) {
  const results: Run[] = []
  for (let i = 0; i < runs; i++) {
    try {
      const run = await runWarrenPair({ natA, natB, bytes, waitDirectMs: 12_000 })
      const r = run.result
      const path = r.path as { kind: string }
      const correct = r.answer === `${bytes} ${String(r.sha256)}`
      const viaRelay = run.relays.reduce((n, relay) => n + run.seen('ra', `out_${relay.host}`), 0)
      results.push({
        direct: path.kind === 'direct' && run.directBytes >= bytes,
        relayed: path.kind === 'relay' && viaRelay >= bytes,
        correct,
        ...(typeof r.toDirectMs === 'number' ? { toDirectMs: r.toDirectMs } : {}),
        mibps: bytes / 1048576 / (Number(r.ms) / 1000),
      })
    } catch (err) {
      results.push({ direct: false, relayed: false, correct: false, error: (err as Error).message.split('\n')[0] })
    }
    const last = results.at(-1)!
    console.error(
      `${natA} x ${natB} run ${i + 1}/${runs}: ${last.direct ? 'direct' : last.relayed ? 'relayed' : 'NEITHER'}` +
        ` ${last.correct ? 'correct' : 'WRONG'} ${fmt(last.mibps, 1)} MiB/s${last.error ? ` (${last.error})` : ''}`,
    )
  }
  rows.push({ pair: `${natA} × ${natB}`, runs: results })
}

const table = [
  '| NAT A × B | direct | relayed | correct | time to direct p50 / max (ms) | MiB/s direct p50 | MiB/s relayed p50 |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(({ pair, runs: rs }) => {
    const t = rs.flatMap((r) => (r.toDirectMs === undefined ? [] : [r.toDirectMs]))
    const dm = rs.filter((r) => r.direct).flatMap((r) => (r.mibps === undefined ? [] : [r.mibps]))
    const rm = rs.filter((r) => r.relayed).flatMap((r) => (r.mibps === undefined ? [] : [r.mibps]))
    const n = rs.length
    return `| ${pair} | ${rs.filter((r) => r.direct).length}/${n} | ${rs.filter((r) => r.relayed).length}/${n} | ${rs.filter((r) => r.correct).length}/${n} | ${fmt(pct(t, 50))} / ${fmt(t.length > 0 ? Math.max(...t) : undefined)} | ${fmt(pct(dm, 50), 1)} | ${fmt(pct(rm, 50), 1)} |`
  }),
].join('\n')
console.log(table)
await mkdir('bench/results', { recursive: true })
const file = `bench/results/${new Date().toISOString().slice(0, 10)}-lab.json`
await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), runs, bytes, rows, table }, null, 2)}\n`)
console.error(`wrote ${file}`)
