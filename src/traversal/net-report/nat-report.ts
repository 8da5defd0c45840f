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
  /**
   * STUN servers that did not answer (a relay that is down), with why. The report stands on the others: one answer is
   * enough to punch toward an easy NAT; with a single answer the NAT cannot be told apart and is taken as easy.
   */
  untested?: string[]
  /** The TCP mapping, when STUN over TCP answered (close it once the upgrade is over). */
  tcp?: TcpNatReport
}

/** After the first STUN answer, how long the others may still take: 3 × its round trip, at least this, ms. */
const GRACE_MIN_MS = 300

/**
 * STUN from the hub's primary socket to every server; the NAT is hard when two servers saw different mappings. A server
 * that does not answer does not hold the report up: once one answered, the others get 3 × its round trip (at least
 * 300 ms) more, and those still silent are named in `untested`. Only when none answers does it fail. With `tcp`, STUN
 * over TCP from one local port runs alongside (a failure there only means no TCP attempt).
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
    const { answers, untested } = await askAll(primary, stunServers, signal)
    const first = answers[0]!.mapped
    const nat = answers.every((a) => natBehaviour(first, a.mapped) === 'easy') ? 'easy' : 'hard'
    const tcpReport = await tcpNat
    return {
      mapped: first,
      nat,
      stunMs: performance.now() - t0,
      ...(untested.length === 0 ? {} : { untested }),
      ...(tcpReport === undefined ? {} : { tcp: tcpReport }),
    }
  } catch (err) {
    void tcpNat?.then((r) => r?.close())
    throw err
  }
}

type Answer = Awaited<ReturnType<typeof stunBinding>>

/** Every server's answer in their order, the grace after the first one, and who stayed silent (why). */
async function askAll(
  primary: UdxEndpoint,
  servers: readonly Endpoint[],
  signal: AbortSignal | undefined,
): Promise<{ answers: Answer[]; untested: string[] }> {
  const grace = new AbortController()
  const results: Array<Answer | Error | undefined> = servers.map(() => undefined)
  let timer: NodeJS.Timeout | undefined
  const asks = servers.map((server, i) =>
    stunBinding(primary.packets, server, {
      timeoutMs: 3000,
      signal: signal === undefined ? grace.signal : AbortSignal.any([signal, grace.signal]),
    }).then(
      (a) => {
        results[i] = a
        timer ??= setTimeout(
          () => grace.abort(new Error('no answer while the others answered')),
          Math.max(GRACE_MIN_MS, 3 * a.rttMs),
        )
      },
      (err: unknown) => {
        results[i] = err instanceof Error ? err : new Error(String(err))
      },
    ),
  )
  try {
    await Promise.all(asks)
  } finally {
    clearTimeout(timer)
  }
  const answers = results.filter((r): r is Answer => r !== undefined && !(r instanceof Error))
  if (answers.length === 0) throw results.find((r) => r instanceof Error) ?? new Error('no STUN answer')
  const untested = servers.flatMap((s, i) => {
    const r = results[i]
    if (!(r instanceof Error)) return []
    const why = grace.signal.aborted && r === grace.signal.reason ? `no answer within the others' time` : r.message
    return [`${s.host}:${s.port} (${why})`]
  })
  return { answers, untested }
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
