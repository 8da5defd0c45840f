/**
 * The traffic part of `warren status`: per service and per peer, each way, the streams open, bytes in (from the
 * peer) and out (to it), and the stream ends by cause.
 */
import type { StreamCountersSnapshot, StreamTally } from '../node/types.ts'
import { table } from './common.ts'

/** `812 B`, `1.5 KiB`, `12.0 MiB`, `3.20 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

/** `2 open, 1.5 KiB in, 3.0 MiB out, ended: 5 ok, 1 reset`. */
export function formatTally(t: StreamTally): string {
  const ends = Object.entries(t.ends)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([cause, n]) => `${n} ${cause}`)
  const base = `${t.open} open, ${formatBytes(t.bytesIn)} in, ${formatBytes(t.bytesOut)} out`
  return ends.length === 0 ? base : `${base}, ended: ${ends.join(', ')}`
}

function section(title: string, side: StreamCountersSnapshot['incoming']): string[] {
  const rows: [string, string][] = [
    ...Object.entries(side.services)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, t]): [string, string] => [`service ${name}`, formatTally(t)]),
    ...Object.entries(side.peers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, t]): [string, string] => [`peer ${id}`, formatTally(t)]),
  ]
  if (rows.length === 0) return [`${title}: none yet`]
  return [`${title}: ${formatTally(side.total)}`, table(rows, '  ')]
}

/** The lines of the traffic section. */
export function formatTraffic(traffic: StreamCountersSnapshot): string[] {
  return [
    ...section("traffic in (other nodes using this node's services)", traffic.incoming),
    ...section("traffic out (this node using other nodes' services)", traffic.outgoing),
  ]
}
