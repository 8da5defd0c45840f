/**
 * A strategy is one way two nodes reach each other directly once they exchanged their mappings: the UDX punch
 * (udx-strategy.ts) or a TCP punch (tcp-strategy.ts). Every strategy of an attempt starts at once; the dialing side
 * tries them in order and reports the one that connected in a `direct` message, the answering side gets every strategy
 * ready and takes the connection that message names.
 *
 * @packageDocumentation
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { WarrenError } from '../../errors.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { NatReport } from '../net-report/nat-report.ts'
import type { PunchMessage } from '../punch/messages.ts'
import type { NatBehaviour, PunchPlan } from '../punch/punch.ts'
import type { Channel } from './channel.ts'
import type { DirectPathOptions, DirectPlan } from './types.ts'

/** What the peer told in its offer or answer, with the attempt's token. */
export interface PeerOffer {
  mapped: Endpoint
  nat: NatBehaviour
  token: string
  tcp?: Endpoint
  tcpNat?: NatBehaviour
  /** Public addresses the peer's router maps to it (dialled plainly before punching, mapped-strategy.ts). */
  portmap?: string[]
}

/** One direct-path attempt after the offer/answer exchange, as either side sees it. */
export interface Attempt {
  node: Libp2p
  chan: Channel
  remotePeer: PeerId
  local: NatReport
  remote: PeerOffer
  opts: DirectPathOptions
  signal: AbortSignal
}

/** What a strategy starts from: the attempt, its UDX punch plan, and (easy side of a birthday) the peer's `armed`. */
export interface StrategyContext extends Attempt {
  plan: PunchPlan
  /** The next message on the channel, which must be `armed`: the easy side of a birthday probes once it arrives. */
  armed: Promise<PunchMessage> | undefined
}

/** A direct connection a strategy made, and the far end as connected. */
export interface Reached {
  connection: Connection
  remote: Endpoint
}

export interface Strategy {
  /** The plan a connection of this strategy reports. */
  readonly plan: DirectPlan
  /**
   * Dialing side: connects and upgrades. Resolves with the address to report in `direct`, or undefined when this
   * strategy gives way to the next one; rejects (the peer told `failed`) when no direct path is left.
   */
  dial(): Promise<(Reached & { addr: string }) | undefined>
  /** Answering side, before the dialer reports: gets ready for the dialer's connection. */
  listen(): void
  /** Whether the address of a `direct` message names a connection of this strategy. */
  carries(addr: string): boolean
  /** Answering side, once `direct` named this strategy: the connection the dialer made. */
  accept(addr: string): Promise<Reached>
  /** Answering side: the dialer reported another strategy, or no direct path; drops what this one reached meanwhile. */
  passOver(): void
  /** Ends the strategy: no more probes or connects, and the sockets it opened and no connection uses are released. */
  stop(): void
}

const NO_PATH_HINT =
  'Both NATs may map each destination to a new port (symmetric); the relayed connection stays in use.'

/** `ERR_NO_DIRECT_PATH` for `peer`, caused by `err` (returned as is when it is one already). */
export function noPath(err: unknown, peer: PeerId): WarrenError {
  if (err instanceof WarrenError && err.code === 'ERR_NO_DIRECT_PATH') return err
  return new WarrenError('ERR_NO_DIRECT_PATH', `no direct path to ${peer}: ${(err as Error).message}`, {
    hint: NO_PATH_HINT,
    cause: err,
  })
}

/** `ERR_NO_DIRECT_PATH` for `peer` with `why` (the peer's `failed` reason, or an unexpected message type). */
export function noPathBecause(why: string, peer: PeerId): WarrenError {
  return new WarrenError('ERR_NO_DIRECT_PATH', `no direct path to ${peer}: ${why}`, { hint: NO_PATH_HINT })
}
