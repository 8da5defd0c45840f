/**
 * The raw udx-native spike over a matrix of NAT pairs, with repetitions, printed as a Markdown table:
 *
 * ```
 * node src/testing/natlab/matrix.ts [--runs 5] [--mib 64] [--mode udx|libp2p] [--pairs cone:cone,cone:symmetric,…]
 * ```
 *
 * Needs root (network namespaces). One lab per pair; every run uses fresh sockets and a fresh punch token.
 *
 * @packageDocumentation
 */
import { parseArgs } from 'node:util'
import { createLab } from './lab.ts'
import type { NatKind } from './topology.ts'
import { runUdxSpike, type SpikeResult, startLabStun } from './udx-spike.ts'

const DEFAULT_PAIRS = 'cone:cone,cone:symmetric,symmetric:cone,none:symmetric,symmetric:symmetric'

function range(values: number[], digits: number): string {
  if (values.length === 0) return '-'
  const sorted = [...values].sort((a, b) => a - b)
  const f = (n: number): string => n.toFixed(digits)
  const median = sorted[Math.floor(sorted.length / 2)]!
  return sorted.length === 1 ? f(median) : `${f(sorted[0]!)}-${f(sorted[sorted.length - 1]!)} (median ${f(median)})`
}

/** Runs the matrix and returns the table rows (also printed as they finish). */
export async function runMatrix(
  pairs: Array<[NatKind, NatKind]>,
  runs: number,
  bytes: number,
  mode: 'udx' | 'libp2p' = 'udx',
): Promise<string[]> {
  const rows = [
    `| NAT A x B (${mode}) | plan | direct | time to direct (ms) | to libp2p connection (ms) | STUN (ms) | MiB/s | probes (A+B) | correct |`,
    '|---|---|---|---|---|---|---|---|---|',
  ]
  console.log(rows.join('\n'))
  for (const [natA, natB] of pairs) {
    const lab = await createLab({ natA, natB, publicHosts: ['relay', 'relay2'] })
    const results: SpikeResult[] = []
    try {
      await Promise.all([startLabStun(lab, 'relay'), startLabStun(lab, 'relay2')])
      for (let i = 0; i < runs; i++) results.push(await runUdxSpike(lab, { bytes, mode }))
    } finally {
      await lab.close()
    }
    const direct = results.filter((r) => r.direct)
    const row = [
      `${natA} x ${natB}`,
      [...new Set(results.map((r) => r.plan))].join(', '),
      `${direct.length}/${results.length}`,
      range(
        direct.map((r) => r.timeToDirectMs!),
        1,
      ),
      range(
        direct.flatMap((r) => (r.timeToConnectionMs === undefined ? [] : [r.timeToConnectionMs])),
        1,
      ),
      range(
        results.map((r) => r.stunMs),
        1,
      ),
      range(
        direct.map((r) => r.mibps!),
        0,
      ),
      range(
        direct.map((r) => (r.probes ?? [0, 0]).reduce((a, b) => a + b, 0)),
        0,
      ),
      `${results.filter((r) => r.checksumOk || !r.direct).length}/${results.length}`,
    ]
    const line = `| ${row.join(' | ')} |`
    rows.push(line)
    console.log(line)
  }
  return rows
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      mib: { type: 'string', default: '64' },
      pairs: { type: 'string', default: DEFAULT_PAIRS },
      mode: { type: 'string', default: 'udx' },
    },
  })
  const pairs = values.pairs.split(',').map((p) => p.split(':') as [NatKind, NatKind])
  if (values.mode !== 'udx' && values.mode !== 'libp2p')
    throw new Error(`--mode must be udx or libp2p, not ${values.mode}`)
  await runMatrix(pairs, Number(values.runs), Number(values.mib) * 1024 * 1024, values.mode)
}
