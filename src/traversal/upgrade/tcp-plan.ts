/**
 * Which TCP attempt goes with a direct-path upgrade (direct-path.ts): the `tcp` fields of the punch messages, the
 * choice between a simultaneous open (tcp-punch.ts) and the birthday method (tcp-birthday.ts), and how the result is
 * reported.
 *
 * @packageDocumentation
 */
import type { Connection } from '@libp2p/interface'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { NatReport } from '../net-report/nat-report.ts'
import type { NatBehaviour, PunchPlan } from '../punch/punch.ts'
import {
  TCP_BIRTHDAY_SOCKETS,
  TCP_BIRTHDAY_TIMEOUT_MS,
  tcpBirthdayEasy,
  tcpBirthdayHard,
} from '../punch/tcp-birthday.ts'
import { TCP_PUNCH_TIMEOUT_MS, type TcpPunch, tcpSimultaneousOpen } from '../punch/tcp-punch.ts'
import type { DirectPathOptions } from './attempt.ts'

/** The `tcp` and `tcpNat` fields of an offer or answer. */
export function tcpOffer(local: NatReport): { tcp?: Endpoint; tcpNat?: NatBehaviour } {
  return local.tcp === undefined ? {} : { tcp: local.tcp.mapped, tcpNat: local.tcp.nat }
}

/**
 * The TCP attempt that goes with a UDX plan, from our side, or undefined for none: a simultaneous open when both map
 * TCP endpoint-independently, the birthday method when the TCP NATs are hard and easy the same way round as the UDP
 * ones. The attempt starts at once (the hard side's SYNs open its mappings before it says `armed`).
 */
export function startTcp(
  plan: PunchPlan,
  local: NatReport,
  remote: { tcp?: Endpoint; tcpNat?: NatBehaviour },
  opts: DirectPathOptions,
  armed: Promise<unknown> | undefined,
  signal: AbortSignal,
): TcpPunch | undefined {
  const mine = local.tcp
  const theirs = remote.tcp
  if (mine === undefined || theirs === undefined || opts.hub.upgrader === undefined) return undefined
  const kinds = `${mine.nat}/${remote.tcpNat ?? 'easy'}`
  if (plan === 'simultaneous' && kinds === 'easy/easy') {
    return tcpSimultaneousOpen(mine.localPort, theirs, { timeoutMs: opts.tcpTimeoutMs ?? TCP_PUNCH_TIMEOUT_MS, signal })
  }
  const timeoutMs = opts.tcpTimeoutMs ?? TCP_BIRTHDAY_TIMEOUT_MS
  if (plan === 'birthday-hard' && kinds === 'hard/easy') {
    return tcpBirthdayHard(opts.birthdaySockets ?? TCP_BIRTHDAY_SOCKETS, theirs, { timeoutMs, signal })
  }
  if (plan === 'birthday-easy' && kinds === 'easy/hard') {
    return tcpBirthdayEasy(mine.localPort, theirs, {
      maxProbes: opts.maxProbes,
      timeoutMs,
      ...(armed === undefined ? {} : { probeAfter: armed }),
      signal,
    })
  }
  return undefined
}

/** The plan a TCP path reports: `tcp` (simultaneous open) or `tcp-birthday`. */
export function tcpPlan(plan: PunchPlan): 'tcp' | 'tcp-birthday' {
  return plan === 'simultaneous' ? 'tcp' : 'tcp-birthday'
}

/** host and port of a TCP connection's far end. */
export function endpointOf(conn: Connection): Endpoint {
  const parts = conn.remoteAddr.getComponents()
  return { host: parts[0]?.value ?? '', port: Number(parts[1]?.value ?? 0) }
}
