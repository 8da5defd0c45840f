/**
 * What a node learns about its own NAT before a direct-path upgrade (upgrade/attempt.ts): its public UDP mapping from
 * the STUN servers (the relays), asked from the udx transport's own socket, whether that mapping varies by destination,
 * and, alongside, its TCP mapping (punch/tcp-punch.ts).
 *
 * @packageDocumentation
 */
import { WarrenError } from '../../errors.ts'
import type { UdxEndpoint } from '../../p2p/udx/endpoint.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { UdxHub } from '../../p2p/udx/transport.ts'
import { stunBinding } from '../../stun/client.ts'
import { type NatBehaviour, natBehaviour } from '../punch/punch.ts'
import { learnTcpNat, type TcpNatReport } from '../punch/tcp-punch.ts'

export interface NatReport {
  mapped: Endpoint
  nat: NatBehaviour
  stunMs: number
  /** The TCP mapping, when STUN over TCP answered (close it once the upgrade is over). */
  tcp?: TcpNatReport
}

/**
 * STUN from the hub's primary socket to every server; the NAT is hard when two servers saw different mappings. With
 * `tcp`, STUN over TCP from one local port runs alongside (a failure there only means no TCP attempt).
 */
export async function learnNat(
  hub: UdxHub,
  stunServers: readonly Endpoint[],
  signal?: AbortSignal,
  tcp = false,
): Promise<NatReport> {
  const primary = requirePrimary(hub)
  if (stunServers.length === 0) {
    throw new WarrenError('ERR_NO_DIRECT_PATH', 'no STUN server is configured, so the public UDP address is unknown', {
      hint: 'Add a relay with a STUN port to `relays` in config.json.',
    })
  }
  const t0 = performance.now()
  const tcpNat = tcp ? learnTcpNat(stunServers, { timeoutMs: 1500, signal }).catch(() => undefined) : undefined
  try {
    const answers = await Promise.all(
      stunServers.map((s) => stunBinding(primary.packets, s, { timeoutMs: 3000, signal })),
    )
    const first = answers[0]!.mapped
    const nat = answers.every((a) => natBehaviour(first, a.mapped) === 'easy') ? 'easy' : 'hard'
    const tcpReport = await tcpNat
    return {
      mapped: first,
      nat,
      stunMs: performance.now() - t0,
      ...(tcpReport === undefined ? {} : { tcp: tcpReport }),
    }
  } catch (err) {
    void tcpNat?.then((r) => r?.close())
    throw err
  }
}

export function requirePrimary(hub: UdxHub): UdxEndpoint {
  const primary = hub.primary()
  if (primary === undefined) {
    throw new WarrenError(
      'ERR_NO_DIRECT_PATH',
      'the udx transport does not listen, so there is no socket to punch from',
      {
        hint: 'Add a UDP listen address such as /ip4/0.0.0.0/udp/0 to the node.',
      },
    )
  }
  return primary
}
