/** Tables and target checks of bench/peers.ts: medians, ranges, load averages and Warren's ratio to each peer. */
import { formatTable, median } from '../stats.ts'
import type { NotMeasured } from './forwarders.ts'
import type { Sample } from './workloads.ts'

export const METRICS = {
  bulkUp: { label: 'bulk up, MiB/s', higherBetter: true },
  bulkDown: { label: 'bulk down, MiB/s', higherBetter: true },
  setupP50: { label: 'new connection p50, ms', higherBetter: false },
  setupP99: { label: 'new connection p99, ms', higherBetter: false },
  coldP50: { label: 'cold connect to a peer never met p50, ms', higherBetter: false },
  coldMax: { label: 'cold connect to a peer never met, largest, ms', higherBetter: false },
  httpRps: { label: 'HTTP keep-alive, req/s', higherBetter: true },
  gatewayRps: { label: 'HTTP keep-alive through the gateway, req/s', higherBetter: true },
  httpCpuUs: { label: 'HTTP: CPU µs per request, both forwarder ends', higherBetter: false },
  gatewayCpuUs: { label: 'HTTP through the gateway: CPU µs per request, both ends', higherBetter: false },
  startMiB: { label: 'idle PSS just started, larger end, MiB', higherBetter: false },
  startBothMiB: { label: 'idle PSS just started, both ends, MiB', higherBetter: false },
  idleMiB: { label: 'idle PSS after use, both ends, MiB', higherBetter: false },
  idleMaxEndMiB: { label: 'idle PSS after use, larger end, MiB', higherBetter: false },
  laterMiB: { label: 'idle PSS a minute after use, both ends, MiB', higherBetter: false },
  laterMaxEndMiB: { label: 'idle PSS a minute after use, larger end, MiB', higherBetter: false },
  perConnKiB: { label: 'per idle connection, right after opening, KiB', higherBetter: false },
  perConnLaterKiB: { label: 'per idle connection, idle for --idle-settle s, KiB', higherBetter: false },
} as const

export type Metric = keyof typeof METRICS

/** Samples per tunnel name and metric, one per round. */
export type Figures = Record<string, Partial<Record<Metric, Sample[]>>>

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-'
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US')
  if (Math.abs(x) >= 100) return x.toFixed(0)
  if (Math.abs(x) >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

export function medianOf(figures: Figures, name: string, m: Metric): number {
  const s = figures[name]?.[m]
  return s === undefined || s.length === 0 ? Number.NaN : median(s.map((x) => x.value))
}

/** `median [min-max] (load a-b)` for one tunnel and metric. */
function cell(samples: Sample[] | undefined): string {
  if (samples === undefined || samples.length === 0) return '-'
  const v = samples.map((s) => s.value)
  const l = samples.map((s) => s.load)
  const range = samples.length > 1 ? ` [${fmt(Math.min(...v))}-${fmt(Math.max(...v))}]` : ''
  const t = samples.flatMap((s) => (s.tcpSockets === undefined ? [] : [s.tcpSockets]))
  const sockets = t.length === 0 ? '' : `, ${Math.min(...t)}-${Math.max(...t)} TCP sockets`
  return `${fmt(median(v))}${range} (load ${Math.min(...l).toFixed(1)}-${Math.max(...l).toFixed(1)}${sockets})`
}

export function resultTable(figures: Figures, names: string[], notMeasured: NotMeasured[]): string {
  const rows = [['workload', ...names, ...notMeasured.map((n) => n.name)]]
  for (const [m, { label }] of Object.entries(METRICS)) {
    rows.push([label, ...names.map((n) => cell(figures[n]?.[m as Metric])), ...notMeasured.map(() => 'not measured')])
  }
  const notes = notMeasured.map((n) => `${n.name}: not measured: ${n.reason}`)
  return [formatTable(rows), ...notes].join('\n')
}

/** Warren's figure over the peer's of the same round, per round (rounds run each tunnel back to back). */
export function roundRatios(figures: Figures, peer: string, m: Metric): number[] {
  const w = figures.warren?.[m] ?? []
  const p = figures[peer]?.[m] ?? []
  return w.slice(0, p.length).map((x, i) => x.value / p[i]!.value)
}

/** Warren's median over each peer's median, per metric, with the range of the per-round ratios. */
export function ratioTable(figures: Figures, names: string[]): string {
  const peers = names.filter((n) => n !== 'warren')
  const rows = [['workload', ...peers.map((p) => `÷ ${p} [per round]`)]]
  for (const [m, { label }] of Object.entries(METRICS)) {
    const w = medianOf(figures, 'warren', m as Metric)
    rows.push([
      label,
      ...peers.map((p) => {
        const r = roundRatios(figures, p, m as Metric)
        const range = r.length > 1 ? ` [${fmt(Math.min(...r))}-${fmt(Math.max(...r))}]` : ''
        return `${fmt(w / medianOf(figures, p, m as Metric))}${range}`
      }),
    ])
  }
  return formatTable(rows)
}

export interface TargetCheck {
  text: string
  value: number
  ok: boolean
}

/** The targets of the head-to-head, from the medians of one run. */
export function targetChecks(figures: Figures): TargetCheck[] {
  const w = (m: Metric): number => medianOf(figures, 'warren', m)
  const ratio = (m: Metric, peer: string): number => w(m) / medianOf(figures, peer, m)
  const r2 = (x: number): number => Math.round(x * 100) / 100
  const checks: TargetCheck[] = []
  const atLeast = (text: string, value: number, goal: number): void => {
    if (Number.isFinite(value))
      checks.push({ text: `${text}: ${r2(value)} (goal >= ${goal})`, value, ok: value >= goal })
  }
  const atMost = (text: string, value: number, goal: number): void => {
    if (Number.isFinite(value))
      checks.push({ text: `${text}: ${r2(value)} (goal <= ${goal})`, value, ok: value <= goal })
  }
  atLeast('bulk up ÷ ssh -L', ratio('bulkUp', 'ssh -L'), 0.6)
  atLeast('bulk down ÷ ssh -L', ratio('bulkDown', 'ssh -L'), 0.6)
  atLeast('bulk up ÷ stock libp2p', ratio('bulkUp', 'libp2p (stock)'), 1.2)
  atLeast('bulk down ÷ stock libp2p', ratio('bulkDown', 'libp2p (stock)'), 1.2)
  atMost('new connection p50, ms', w('setupP50'), 1)
  atLeast('HTTP req/s ÷ ssh -L', ratio('httpRps', 'ssh -L'), 1.2)
  atLeast('HTTP req/s through the gateway ÷ through the forward', w('gatewayRps') / w('httpRps'), 0.8)
  atMost('idle daemon just started (larger end), MiB PSS', w('startMiB'), 60)
  atMost('idle daemon after the workloads (larger end), MiB PSS', w('idleMaxEndMiB'), 60)
  atMost('idle daemon a minute after the workloads (larger end), MiB PSS', w('laterMaxEndMiB'), 60)
  atMost('per idle connection over both ends, right after opening, KiB', w('perConnKiB'), 32)
  atMost('per idle connection over both ends, once idle, KiB', w('perConnLaterKiB'), 32)
  return checks
}
