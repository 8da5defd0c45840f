/**
 * Checking the relayed connections to a peer whose direct path just went unacknowledged or silent: the NAT that
 * dropped the direct path's mapping may be the peer's, and then the peer's connection to the relay is gone too, so
 * the circuit through it carries nothing although the relay still answers this node. One ping per relayed connection
 * (at most one check per peer at a time); a circuit that does not answer within {@link CIRCUIT_PING_TIMEOUT_MS} is
 * aborted, so the next stream dials the peer afresh through its relays (where it reserves again) instead of waiting
 * on a dead circuit.
 *
 * @example
 * ```ts
 * const circuits = new CircuitCheck(libp2p, log)
 * circuits.check(peerId, 'its direct path went silent')
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import { WarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { pingOnce } from '../../p2p/conn-ping.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { isRelayed } from '../../p2p/path.ts'

/** A circuit ping unanswered for this long means the circuit is dead, ms. */
export const CIRCUIT_PING_TIMEOUT_MS = 750

export class CircuitCheck {
  readonly #libp2p: WarrenLibp2p
  readonly #log: Logger
  readonly #running = new Set<string>()

  constructor(libp2p: WarrenLibp2p, log: Logger) {
    this.#libp2p = libp2p
    this.#log = log
  }

  /** Pings every open relayed connection to `peer` (unless a check of it runs) and aborts those that do not answer. */
  check(peer: PeerId, why: string): void {
    const key = peer.toString()
    if (this.#running.has(key)) return
    const circuits = this.#libp2p.getConnections(peer).filter((c) => c.status === 'open' && isRelayed(c))
    if (circuits.length === 0) return
    this.#running.add(key)
    void Promise.all(
      circuits.map(async (conn) => {
        try {
          await pingOnce(conn, CIRCUIT_PING_TIMEOUT_MS)
        } catch (err) {
          if (conn.status !== 'open') return
          const msg =
            `the relayed connection to ${peer} did not answer a ping within ${CIRCUIT_PING_TIMEOUT_MS} ms ` +
            `after ${why} (${(err as Error).message})`
          this.#log('info', `${msg}; closing it, the next stream dials ${peer} again`)
          conn.abort(
            new WarrenError('ERR_RELAY_UNREACHABLE', msg, {
              hint: 'The node lost its connection to the relay (its NAT forgot the mapping); Warren dials it again.',
              details: { peer: key, remote: conn.remoteAddr.toString() },
            }),
          )
        }
      }),
    ).finally(() => this.#running.delete(key))
  }
}
