/** Summaries of a soak run: counts by verdict, errors grouped by path, side and message, recovery per fault kind. */
import type { Verdict } from './clients.ts'

/** One transfer as the summaries see it (loopback and lab alike). */
export interface Recorded {
  spec: { id?: number; path: string; dir: string; pace?: string; size: number }
  verdict: Verdict
  bytes: number
  client?: string
  server?: string
  startedAt: number
  endedAt: number
  probe?: boolean
  duringFault?: boolean
  phase?: string
}

export interface ErrorGroup {
  path: string
  dir: string
  side: 'client' | 'server' | 'both'
  message: string
  count: number
  /** How many of them ended outside any fault window (an error no fault explains). */
  unexpected: number
}

export interface Totals {
  transfers: number
  probes: number
  /** Recovery probes that did not arrive whole (expected while a path recovers; counted apart). */
  probesFailed: number
  bytesMoved: number
  gibMoved: number
  whole: number
  visibleErrors: number
  silent: number
  stalled: number
  /** Uploads cut short at the service by the kernel's FIN of a SIGKILLed daemon (see clients.ts). */
  finOnKill: number
  /** Errors of transfers that overlapped no fault window. */
  unexpectedErrors: number
}

/** Removes what differs between otherwise equal messages (byte counts, ids, ports). */
const shape = (m: string): string =>
  m
    .replace(/\d{3,}/g, 'N')
    .replace(/\s+/g, ' ')
    .slice(0, 160)

export function totals(outs: Recorded[]): Totals {
  const by = (v: Verdict): number => outs.filter((o) => o.verdict === v && !o.probe).length
  const bytesMoved = outs.reduce((s, o) => s + o.bytes, 0)
  return {
    transfers: outs.filter((o) => !o.probe).length,
    probes: outs.filter((o) => o.probe).length,
    probesFailed: outs.filter((o) => o.probe && o.verdict === 'error').length,
    bytesMoved,
    gibMoved: Math.round((bytesMoved / 2 ** 30) * 100) / 100,
    whole: by('whole'),
    visibleErrors: by('error'),
    // a probe silently truncated or stalled counts like any other transfer
    silent: outs.filter((o) => o.verdict === 'silent').length,
    stalled: outs.filter((o) => o.verdict === 'stalled').length,
    finOnKill: outs.filter((o) => o.verdict === 'fin-on-kill').length,
    unexpectedErrors: outs.filter((o) => o.verdict === 'error' && !o.duringFault && !o.probe).length,
  }
}

export function errorGroups(outs: Recorded[]): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>()
  for (const o of outs) {
    if (o.verdict === 'whole') continue
    const side =
      o.client !== undefined && o.server !== undefined ? 'both' : o.server !== undefined ? 'server' : 'client'
    const message = shape(
      [o.client && `client: ${o.client}`, o.server && `service: ${o.server}`].filter(Boolean).join('; '),
    )
    const path = `${o.phase ? `${o.phase} ` : ''}${o.spec.path}${o.probe ? ' (probe)' : ''}`
    const key = `${o.verdict}|${path}|${o.spec.dir}|${message}`
    const g = groups.get(key) ?? {
      path,
      dir: o.spec.dir,
      side,
      message: `${o.verdict}: ${message}`,
      count: 0,
      unexpected: 0,
    }
    g.count++
    if (!o.duringFault) g.unexpected++
    groups.set(key, g)
  }
  return [...groups.values()].sort((a, b) => b.count - a.count)
}

/** Per path and direction: transfers (not probes), whole, MiB moved. */
export function perPath(
  outs: Recorded[],
): { path: string; dir: string; transfers: number; whole: number; mib: number }[] {
  const rows = new Map<string, { path: string; dir: string; transfers: number; whole: number; mib: number }>()
  for (const o of outs) {
    if (o.probe) continue
    const path = `${o.phase ? `${o.phase} ` : ''}${o.spec.path}`
    const key = `${path} ${o.spec.dir}`
    const r = rows.get(key) ?? { path, dir: o.spec.dir, transfers: 0, whole: 0, mib: 0 }
    r.transfers++
    if (o.verdict === 'whole') r.whole++
    r.mib += o.bytes / 2 ** 20
    rows.set(key, r)
  }
  return [...rows.values()].map((r) => ({ ...r, mib: Math.round(r.mib) }))
}

/** Recovery times (ms) per fault kind: count, recovered, p50 and max. */
export function recovery(
  faults: { kind: string; recoveryMs?: number; skipped?: string }[],
): { kind: string; faults: number; recovered: number; p50Ms?: number; maxMs?: number }[] {
  const kinds = [...new Set(faults.map((f) => f.kind))]
  return kinds.map((kind) => {
    const fs = faults.filter((f) => f.kind === kind && f.skipped === undefined)
    const ms = fs.flatMap((f) => (f.recoveryMs === undefined ? [] : [f.recoveryMs])).sort((a, b) => a - b)
    return {
      kind,
      faults: fs.length,
      recovered: ms.length,
      ...(ms.length > 0 ? { p50Ms: ms[Math.floor((ms.length - 1) / 2)]!, maxMs: ms.at(-1)! } : {}),
    }
  })
}

/** One transfer as a line of the JSON file. */
export function compact(o: Recorded): Record<string, unknown> {
  const { id, path, dir, pace, size } = o.spec
  return {
    ...(id === undefined ? {} : { id }),
    path: `${o.phase === 'lab' ? 'lab ' : ''}${path}`,
    dir,
    ...(pace === undefined ? {} : { pace }),
    size,
    verdict: o.verdict,
    bytes: o.bytes,
    ms: o.endedAt - o.startedAt,
    ...(o.client === undefined ? {} : { client: o.client }),
    ...(o.server === undefined ? {} : { server: o.server }),
    ...(o.probe ? { probe: true } : {}),
    ...(o.duringFault ? { duringFault: true } : {}),
  }
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n')
}
