/**
 * The signalling and punching half shared by the lab peers ({@link ./udx-peer.ts}, {@link ./libp2p-peer.ts}): STUN from
 * the primary socket to two servers, `ready` out, `peer` in, punch with the plan the two NAT behaviours call for, `direct`
 * or `failed` out. The parent relays the messages, standing in for the relayed connection.
 *
 * @packageDocumentation
 */
import type { Endpoint, PacketSocket } from '../../p2p/udx/packet-socket.ts'
import { stunBinding } from '../../stun/client.ts'
import {
  type NatBehaviour,
  natBehaviour,
  type PunchResult,
  type PunchSession,
  punch,
  punchPlan,
} from '../../traversal/punch/punch.ts'
import type { LineChannel, LineMessage } from './lines.ts'

export interface PunchConfig {
  stun: Endpoint[]
  role: 'send' | 'recv'
  bytes: number
  /** Sockets to open on a hard (symmetric) NAT for birthday probing. */
  birthdaySockets: number
  maxProbes: number
  punchTimeoutMs: number
  token: string
}

export interface PunchOutcome {
  peer: LineMessage
  nat: NatBehaviour
  plan: ReturnType<typeof punchPlan>
  session: PunchSession
  /** Undefined when punching failed (`failed` was already reported). */
  result?: PunchResult
  sockets: PacketSocket[]
}

/** Runs STUN, exchanges `ready`/`peer` with the parent and punches. `extra` opens one more socket (birthday). */
export async function stunAndPunch(
  chan: LineChannel,
  cfg: PunchConfig,
  primary: PacketSocket,
  extra: () => PacketSocket,
  readyFields: Record<string, unknown> = {},
): Promise<PunchOutcome> {
  const t0 = performance.now()
  const answers = await Promise.all(cfg.stun.map((server) => stunBinding(primary, server, { timeoutMs: 3000 })))
  const stunMs = performance.now() - t0
  const nat = natBehaviour(answers[0]!.mapped, answers[answers.length - 1]!.mapped)
  chan.send({ type: 'ready', mapped: answers[0]!.mapped, nat, stunMs, ...readyFields })

  const peer = await chan.next('peer', 30_000)
  const plan = punchPlan(nat, peer.nat as NatBehaviour)
  const sockets: PacketSocket[] = [primary]
  if (plan === 'birthday-hard') for (let i = 1; i < cfg.birthdaySockets; i++) sockets.push(extra())
  const session = punch({
    plan,
    sockets,
    token: Buffer.from(cfg.token, 'hex'),
    remote: peer.mapped as Endpoint,
    // Two symmetric NATs almost never meet: try briefly, then leave it to the relay.
    timeoutMs: nat === 'hard' && peer.nat === 'hard' ? Math.min(2000, cfg.punchTimeoutMs) : cfg.punchTimeoutMs,
    maxProbes: plan === 'birthday-easy' ? cfg.maxProbes : undefined,
    // The easy side of a birthday attempt answers at once but probes only once the hard side has opened its mappings.
    probeAfter: plan === 'birthday-easy' ? chan.next('go', 10_000) : undefined,
  })
  if (plan === 'birthday-hard') chan.send({ type: 'armed', sockets: sockets.length })
  try {
    const result = await session.result
    chan.send({ type: 'direct', plan, ms: result.ms, remote: result.remote, probes: result.probesSent })
    return { peer, nat, plan, session, result, sockets }
  } catch (err) {
    chan.send({ type: 'failed', plan, message: (err as Error).message })
    return { peer, nat, plan, session, sockets }
  }
}
