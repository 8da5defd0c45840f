/**
 * `warren netcheck` data: from one UDP socket, ask every STUN server (the relays' STUN ports) for our public mapping and
 * time the answers. The mapping varying by destination means a symmetric ("hard") NAT, where direct paths need
 * birthday probing and may fall back to the relay.
 *
 * @example
 * ```ts
 * const report = await netcheck(hub.primary()!.packets, [{ host: '198.18.0.1', port: 3478 }, { host: '198.18.0.4', port: 3478 }])
 * // { udp: true, servers: [{ server, mapped, rttMs }, …], mappingVariesByDestination: false, nat: 'easy', … }
 * ```
 *
 * @packageDocumentation
 */
import { createSocket } from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { type Endpoint, fromDgram, type PacketSocket } from '../../p2p/udx/packet-socket.ts'
import { stunBinding } from '../../stun/client.ts'
import type { NatBehaviour } from '../punch/punch.ts'
import { learnTcpNat } from '../punch/tcp-punch.ts'

export interface NetcheckServer {
  server: Endpoint
  /** Our address as this server saw it, when it answered. */
  mapped?: Endpoint
  rttMs?: number
  /** Why there is no answer. */
  error?: string
}

export interface NetcheckReport {
  /** At least one STUN server answered over UDP. */
  udp: boolean
  servers: NetcheckServer[]
  /** Distinct public addresses seen (more than one: the NAT maps per destination, or several exits). */
  publicAddresses: Endpoint[]
  /** Undefined with fewer than two answers: one server cannot tell. */
  mappingVariesByDestination?: boolean
  nat?: NatBehaviour
  /** Every server saw one of this host's own addresses and the socket's port: no NAT in the way (a firewall may still be). */
  noNat?: boolean
  /**
   * STUN over TCP from one local port (TCP direct paths): the public mapping and, with two answers, whether it varies
   * by destination; or why there is none (the relays' STUN ports may be UDP only).
   */
  tcp?: { mapped: Endpoint; nat?: NatBehaviour } | { error: string }
}

async function tcpCheck(servers: readonly Endpoint[], timeoutMs: number): Promise<NetcheckReport['tcp']> {
  if (servers.length === 0) return undefined
  try {
    const r = await learnTcpNat(servers, { timeoutMs })
    r.close()
    return { mapped: r.mapped, ...(r.answered >= 2 ? { nat: r.nat } : {}) }
  } catch (err) {
    return { error: (err as Error).message }
  }
}

/** Runs the checks on `socket` (pass the node's udx socket to describe the socket direct paths use). */
export async function netcheck(
  socket: PacketSocket,
  servers: readonly Endpoint[],
  options: { timeoutMs?: number } = {},
): Promise<NetcheckReport> {
  const tcp = tcpCheck(servers, options.timeoutMs ?? 3000)
  const results = await Promise.all(
    servers.map(async (server): Promise<NetcheckServer> => {
      try {
        const { mapped, rttMs } = await stunBinding(socket, server, { timeoutMs: options.timeoutMs ?? 3000 })
        return { server, mapped, rttMs }
      } catch (err) {
        return { server, error: (err as Error).message }
      }
    }),
  )
  const answered = results.flatMap((r) => (r.mapped === undefined ? [] : [r.mapped]))
  const publicAddresses = answered.filter(
    (a, i) => answered.findIndex((b) => b.host === a.host && b.port === a.port) === i,
  )
  const tcpReport = await tcp
  const report: NetcheckReport = {
    udp: answered.length > 0,
    servers: results,
    publicAddresses,
    ...(tcpReport === undefined ? {} : { tcp: tcpReport }),
  }
  if (answered.length >= 2) {
    report.mappingVariesByDestination = publicAddresses.length > 1
    report.nat = report.mappingVariesByDestination ? 'hard' : 'easy'
  }
  if (answered.length > 0) {
    // No NAT when every server saw one of this host's own addresses and the socket's own port.
    const own = new Set(
      Object.values(networkInterfaces())
        .flat()
        .map((i) => i?.address),
    )
    const port = socket.local().port
    report.noNat = answered.every((a) => own.has(a.host) && a.port === port)
  }
  return report
}

/** {@link netcheck} from a fresh IPv4 UDP socket (when the node's udx socket is not at hand, e.g. the CLI alone). */
export async function netcheckFresh(
  servers: readonly Endpoint[],
  options: { timeoutMs?: number } = {},
): Promise<NetcheckReport> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, () => resolve()))
  try {
    return await netcheck(fromDgram(s), servers, options)
  } finally {
    s.close()
  }
}
