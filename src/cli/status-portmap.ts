/**
 * The port-mapping lines of `warren status` and `warren netcheck`: which protocol the router answered (PCP, NAT-PMP,
 * UPnP IGD), each mapping's external address and the lifetime left, or why there is none (no answer, refused), with
 * each protocol's probe outcome.
 *
 * ```
 * port mapping  pcp from 192.168.1.1
 *   tcp 192.168.1.20:4781 → 203.0.113.7:4781  (1h 59m left)
 *   udp 192.168.1.20:50412 → 203.0.113.7:50412  (1h 59m left)
 * ```
 */
import type { PortMapStatus } from '../traversal/portmap/types.ts'

/** `1h 59m`, `4m 10s`, `12s`: the lifetime left. */
function left(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`
  return `${s}s`
}

/** The block for `st`, or [] when there is no status (port mapping off in config). */
export function formatPortMapping(st: PortMapStatus | undefined, now = Date.now()): string[] {
  if (st === undefined) return ['port mapping  off (traversal.portMapping.enabled is false)']
  if (st.state === 'off') return [`port mapping  off (${st.reason ?? 'every protocol is off'})`]
  if (st.state === 'probing') return [`port mapping  asking ${st.gateway ?? 'the router'}…`]
  const probes = Object.entries(st.probes)
    .map(([p, o]) => `${p} ${o}`)
    .join('; ')
  // how long the latest attempt (probe and first mapping tries) took, against its budget
  const took = st.attemptMs === undefined ? '' : ` (asked in ${st.attemptMs} ms of ${st.budgetMs ?? '?'})`
  if (st.state === 'none') {
    return [`port mapping  none${st.gateway === undefined ? '' : ` from ${st.gateway}`}: ${st.reason ?? probes}${took}`]
  }
  return [
    `port mapping  ${st.protocol} from ${st.gateway}`,
    ...st.mappings.map(
      (m) => `  ${m.transport} ${m.internal} → ${m.external}  (${left(Math.max(0, m.expiresAt - now))} left)`,
    ),
    ...(st.attemptMs === undefined ? [] : [`  ${probes}${took}`]),
  ]
}
