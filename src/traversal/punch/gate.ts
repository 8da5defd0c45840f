/**
 * Who may ask this node to punch. A punch request makes the node send hundreds of UDP probes (and a TCP connect)
 * toward an address the asker chooses, and tells the asker this node's public mappings; so it is answered only for
 * nodes that may use something here:
 *
 * - a known node (config `peers`, a service's `allow` list, a relay in `relays`);
 * - any node, when a service here is public (`allow: ["*"]`): such a node may use that service, so it may also ask
 *   for a direct path to it;
 * - a node this node dialled itself (it has an outbound connection to it).
 *
 * Every node gets at most `perPeer` answered requests in a minute; strangers (admitted by a public service or by this
 * node's dial) share `strangersPerMinute` more. Refusals are sent back on the punch protocol as a `failed` message
 * whose reason starts with {@link PUNCH_REFUSED}.
 *
 * @example
 * ```ts
 * const gate = new PunchGate({ perPeer: 12, strangersPerMinute: 60, admission: (peer) => 'known' })
 * gate.check(peer)   // undefined: answer it; a string: the reason to refuse
 * ```
 */
import type { PeerId } from '@libp2p/interface'

/** The start of every refusal's reason, so that the asking side can tell a refusal from a failed punch. */
export const PUNCH_REFUSED = 'punch refused:'

/** Why a node may ask: it is known here, a service here is public, or this node dialled it; undefined: it may not. */
export type PunchAdmission = 'known' | 'public' | 'dialled' | undefined

export interface PunchGateOptions {
  /** Answered requests per minute from one node. */
  perPeer: number
  /** Answered requests per minute from strangers (admission `public` or `dialled`), all together. */
  strangersPerMinute: number
  /** Why `peer` may ask, read on every request (the services and their allow lists change at runtime). */
  admission: (peer: PeerId) => PunchAdmission
  /** Clock, ms (tests). */
  now?: () => number
}

const WINDOW_MS = 60_000

export class PunchGate {
  readonly #opts: PunchGateOptions
  readonly #now: () => number
  /** Times of the answered requests of the last minute, per node. */
  readonly #perPeer = new Map<string, number[]>()
  /** Times of the answered requests from strangers of the last minute. */
  #strangers: number[] = []

  constructor(opts: PunchGateOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
  }

  /** Undefined when the request from `peer` is answered (and counted), else why it is refused. */
  check(peer: PeerId): string | undefined {
    const admission = this.#opts.admission(peer)
    if (admission === undefined) {
      return `${PUNCH_REFUSED} no service here allows this node, and this node did not dial it`
    }
    const now = this.#now()
    this.#expire(now)
    const id = peer.toString()
    const times = this.#perPeer.get(id) ?? []
    if (times.length >= this.#opts.perPeer) {
      return `${PUNCH_REFUSED} more than ${this.#opts.perPeer} requests from this node in a minute (traversal.punchRequestsPerPeer)`
    }
    const stranger = admission !== 'known'
    if (stranger && this.#strangers.length >= this.#opts.strangersPerMinute) {
      return `${PUNCH_REFUSED} more than ${this.#opts.strangersPerMinute} requests from unknown nodes in a minute (traversal.punchRequestsPerMinute)`
    }
    times.push(now)
    this.#perPeer.set(id, times)
    if (stranger) this.#strangers.push(now)
    return undefined
  }

  /** Drops what is older than a minute, so that the maps hold only the last minute's askers. */
  #expire(now: number): void {
    const since = now - WINDOW_MS
    if (this.#strangers.length > 0 && this.#strangers[0]! <= since)
      this.#strangers = this.#strangers.filter((t) => t > since)
    for (const [id, times] of this.#perPeer) {
      if (times[times.length - 1]! <= since) this.#perPeer.delete(id)
      else if (times[0]! <= since)
        this.#perPeer.set(
          id,
          times.filter((t) => t > since),
        )
    }
  }
}
