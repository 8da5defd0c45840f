/**
 * The port-mapping part of `npm run lab` (scripts/lab.ts): for each pair of NAT kinds, `runs` runs with miniupnpd on
 * both routers (src/testing/natlab/miniupnpd.ts) and the nodes' port mapping on, then as many with it off
 * (WARREN_LAB_PORTMAP=0, read by test/lab/fixtures/lab-warren.ts). Per setting: direct runs (Warren's report and the
 * routers' counters agree), how the direct paths were made, time to direct, and the share of the transferred bytes
 * that went from A's router to a relay host.
 */
import { quantile } from '../bench/stats.ts'
import type { NatKind, RouterName } from '../src/testing/natlab/index.ts'
import { startMiniupnpd } from '../src/testing/natlab/miniupnpd.ts'
import { runLabPair } from '../test/support/lab-pair-run.ts'

export interface PortmapRun {
  portMapping: boolean
  direct: boolean
  correct: boolean
  plan?: string
  toDirectMs?: number
  /** Bytes from A's router to a relay host ÷ bytes sent. */
  relayedShare: number
  error?: string
}

export interface PortmapRow {
  pair: string
  portMapping: boolean
  runs: PortmapRun[]
}

const fmt = (n: number | undefined, digits = 0): string => (n === undefined ? '-' : n.toFixed(digits))

async function oneRun(natA: NatKind, natB: NatKind, on: boolean, bytes: number): Promise<PortmapRun> {
  if (on) delete process.env.WARREN_LAB_PORTMAP
  else process.env.WARREN_LAB_PORTMAP = '0'
  try {
    const run = await runLabPair({
      natA,
      natB,
      bytes,
      waitDirectMs: 12_000,
      pings: 3,
      setup: async (lab) => {
        const routers: RouterName[] = ['ra', 'rb']
        const started = await Promise.all(routers.map((r) => startMiniupnpd(lab, r)))
        return async () => {
          await Promise.all(started.map((u) => u.stop()))
        }
      },
    })
    const relayed = Object.values(run.main.viaRelay).reduce((a, b) => a + b, 0)
    const plan = (run.result.upgrade as { plan?: string } | undefined)?.plan
    const toDirectMs = run.result.toDirectMs
    return {
      portMapping: on,
      direct: run.main.proven === 'direct',
      correct: run.main.correct,
      ...(run.main.proven === 'direct' && plan !== undefined ? { plan } : {}),
      ...(typeof toDirectMs === 'number' ? { toDirectMs: Math.round(toDirectMs) } : {}),
      relayedShare: Math.min(1, relayed / bytes),
    }
  } finally {
    delete process.env.WARREN_LAB_PORTMAP
  }
}

/** Runs the port-mapping matrix; `runs` 0 runs nothing. */
export async function portmapMatrix(
  pairs: Array<[NatKind, NatKind]>,
  runs: number,
  bytes: number,
): Promise<{ rows: PortmapRow[]; table: string }> {
  const rows: PortmapRow[] = []
  for (const [natA, natB] of runs > 0 ? pairs : []) {
    for (const on of [true, false]) {
      const rs: PortmapRun[] = []
      for (let i = 0; i < runs; i++) {
        const r = await oneRun(natA, natB, on, bytes).catch(
          (err: unknown): PortmapRun => ({
            portMapping: on,
            direct: false,
            correct: false,
            relayedShare: 1,
            error: (err as Error).message.split('\n')[0],
          }),
        )
        rs.push(r)
        console.error(
          `${natA} x ${natB} port mapping ${on ? 'on' : 'off'} run ${i + 1}/${runs}: ${r.direct ? `direct (${r.plan})` : 'not direct'}` +
            ` ${r.correct ? 'correct' : 'WRONG'}, ${fmt(r.relayedShare * 100)} % relayed${r.error ? ` (${r.error})` : ''}`,
        )
      }
      rows.push({ pair: `${natA} × ${natB}`, portMapping: on, runs: rs })
    }
  }
  const table = [
    '| NAT A × B (routers with miniupnpd) | port mapping | direct | correct | direct paths made by | time to direct p50 / max (ms) | bytes relayed |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(({ pair, portMapping, runs: rs }) => {
      const t = rs.flatMap((r) => (r.toDirectMs === undefined ? [] : [r.toDirectMs]))
      const count = new Map<string, number>()
      for (const r of rs) if (r.plan !== undefined) count.set(r.plan, (count.get(r.plan) ?? 0) + 1)
      const plans = count.size === 0 ? '-' : [...count].map(([k, v]) => `${k} ${v}`).join(', ')
      const share = rs.reduce((a, r) => a + r.relayedShare, 0) / Math.max(1, rs.length)
      const n = rs.length
      return `| ${pair} | ${portMapping ? 'on' : 'off'} | ${rs.filter((r) => r.direct).length}/${n} | ${rs.filter((r) => r.correct).length}/${n} | ${plans} | ${fmt(t.length > 0 ? quantile(t, 0.5) : undefined)} / ${fmt(t.length > 0 ? Math.max(...t) : undefined)} | ${fmt(share * 100)} % |`
    }),
  ].join('\n')
  return { rows, table }
}
