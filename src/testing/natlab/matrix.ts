/**
 * Direct paths over a matrix of NAT pairs, with repetitions, printed as a Markdown table:
 *
 * ```
 * node src/testing/natlab/matrix.ts [--runs 5] [--mib 64] [--mode udx|libp2p|upgrade] [--pairs cone:cone,…]
 * ```
 *
 * Modes: `udx` raw udx-native stream (signalling by the parent), `libp2p` libp2p over the udx transport (signalling by
 * the parent), `upgrade` the full `/warren/punch/1.0.0` upgrade over a connection through a Warren relay on the public
 * segment (2 MiB Yamux window, see docs/traversal.md), with the bulk stream falling back to the relayed connection when no direct path is found.
 *
 * Needs root (network namespaces). One lab per pair; every run uses fresh sockets and a fresh punch token.
 *
 * @packageDocumentation
 */
import { parseArgs } from 'node:util'
import { createLab } from './lab.ts'
import type { NatKind } from './topology.ts'
import { runUdxSpike, type SpikeResult, startLabStun } from './udx-direct-run.ts'
import { runUpgradeSpike, startLabRelay } from './upgrade-run.ts'

export type MatrixMode = 'udx' | 'libp2p' | 'upgrade'

/** One run in the shape every mode can fill. */
type Run = Pick<
  SpikeResult,
  'plan' | 'direct' | 'timeToDirectMs' | 'timeToConnectionMs' | 'mibps' | 'probes' | 'checksumOk'
> & {
  stunMs?: number
  relayed?: boolean
}

async function oneRun(
  lab: Awaited<ReturnType<typeof createLab>>,
  bytes: number,
  mode: MatrixMode,
  relayAddr: string,
): Promise<Run> {
  if (mode !== 'upgrade') return runUdxSpike(lab, { bytes, mode })
  let r: Awaited<ReturnType<typeof runUpgradeSpike>>
  try {
    r = await runUpgradeSpike(lab, { bytes, yamuxWindow: 2 * 1024 * 1024, relayAddr })
  } catch (err) {
    // A broken run counts as incorrect; the matrix goes on.
    const log = (err as { details?: { log?: unknown } }).details?.log
    console.error(`${lab.natA} x ${lab.natB}: run failed: ${(err as Error).message} ${JSON.stringify(log ?? '')}`)
    return { direct: false, relayed: false, checksumOk: false }
  }
  if (!r.checksumOk) console.error(`${lab.natA} x ${lab.natB}: ${r.failure}`)
  return {
    plan: r.plan,
    direct: r.direct,
    relayed: r.relayed,
    timeToConnectionMs: r.upgradeMs,
    mibps: r.mibps,
    checksumOk: r.checksumOk,
  }
}

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
  mode: MatrixMode = 'udx',
): Promise<string[]> {
  const rows = [
    `| NAT A x B (${mode}) | plan | direct | relayed | time to direct (ms) | to libp2p connection (ms) | STUN (ms) | MiB/s (direct) | MiB/s (relayed) | probes (A+B) | correct |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  console.log(rows.join('\n'))
  for (const [natA, natB] of pairs) {
    const lab = await createLab({ natA, natB, publicHosts: ['relay', 'relay2'] })
    const results: Run[] = []
    try {
      const [relayAddr] = await Promise.all([
        mode === 'upgrade' ? startLabRelay(lab, 'relay') : startLabStun(lab, 'relay').then(() => ''),
        startLabStun(lab, 'relay2'),
      ])
      for (let i = 0; i < runs; i++) results.push(await oneRun(lab, bytes, mode, relayAddr))
    } finally {
      await lab.close()
    }
    const direct = results.filter((r) => r.direct)
    const row = [
      `${natA} x ${natB}`,
      [...new Set(results.map((r) => r.plan ?? '-'))].join(', '),
      `${direct.length}/${results.length}`,
      mode === 'upgrade' ? `${results.filter((r) => r.relayed).length}/${results.length}` : '-',
      range(
        direct.flatMap((r) => (r.timeToDirectMs === undefined ? [] : [r.timeToDirectMs])),
        1,
      ),
      range(
        direct.flatMap((r) => (r.timeToConnectionMs === undefined ? [] : [r.timeToConnectionMs])),
        1,
      ),
      range(
        results.flatMap((r) => (r.stunMs === undefined ? [] : [r.stunMs])),
        1,
      ),
      range(
        direct.map((r) => r.mibps!),
        0,
      ),
      range(
        results.flatMap((r) => (r.relayed === true ? [r.mibps!] : [])),
        0,
      ),
      range(
        direct.flatMap((r) => (r.probes === undefined ? [] : [r.probes[0] + r.probes[1]])),
        0,
      ),
      `${results.filter((r) => r.checksumOk || (mode !== 'upgrade' && !r.direct)).length}/${results.length}`,
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
  const mode = values.mode as MatrixMode
  if (!['udx', 'libp2p', 'upgrade'].includes(mode))
    throw new Error(`--mode must be udx, libp2p or upgrade, not ${mode}`)
  await runMatrix(pairs, Number(values.runs), Number(values.mib) * 1024 * 1024, mode)
}
