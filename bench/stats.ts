/** Small statistics and table helpers for the benchmark. */

export const MiB = 1024 * 1024

/** The q-quantile (0..1) of `values` by the nearest-rank method. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

export function median(values: number[]): number {
  return quantile(values, 0.5)
}

export interface LatencySummary {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

/** Latency figures in ms, rounded to µs. */
export function summarize(samplesMs: number[]): LatencySummary {
  const r = (x: number) => Math.round(x * 1000) / 1000
  const mean = samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length
  return {
    count: samplesMs.length,
    p50: r(quantile(samplesMs, 0.5)),
    p90: r(quantile(samplesMs, 0.9)),
    p99: r(quantile(samplesMs, 0.99)),
    max: r(Math.max(...samplesMs)),
    mean: r(mean),
  }
}

/** MiB/s for `bytes` moved in `ms`. */
export function mibPerSec(bytes: number, ms: number): number {
  return Math.round((bytes / MiB / (ms / 1000)) * 10) / 10
}

/** Gbit/s for a MiB/s figure. */
export function gbitPerSec(mibs: number): number {
  return Math.round(((mibs * MiB * 8) / 1e9) * 100) / 100
}

/** A plain text table: first row is the header, columns padded, numbers right-aligned. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i > 0 && /^[\d.%-]/.test(cell) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  const [head, ...body] = rows
  return [line(head!), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}
