/**
 * Asking one relay of config `relays`, for home-relay.ts and standby-relay.ts: {@link RelayAttempts.measure} dials
 * and pings it, {@link RelayAttempts.obtain} asks it for a reservation (presenting the node's token for that relay,
 * if any), each within the attempt timeout; failures are written to the relay's status entry or thrown as WarrenErrors.
 */

import { WarrenError } from '../../errors.ts'
import { parseNodeId } from '../../identity/node-id.ts'
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import type { RelayInfo } from '../info.ts'
import { queryRelayInfo } from '../info.ts'
import { relayStatusOf, reservationRefused } from '../status.ts'
import type { RelayClientParts } from './client-store.ts'
import type { Candidate } from './relay-entries.ts'

export interface RelayAttemptsOptions {
  libp2p: WarrenLibp2p
  parts: RelayClientParts
  log: Logger
  /** Time for one relay to answer a ping or grant a reservation, ms. */
  attemptMs: number
  /** Shared tokens by relay id (config `relayTokens`), each presented only to its relay. */
  tokens?: Record<string, string> | undefined
}

export class RelayAttempts {
  readonly #libp2p: WarrenLibp2p
  readonly #parts: RelayClientParts
  readonly #log: Logger
  readonly #attemptMs: number
  readonly #tokens = new Map<string, string>()
  /** Relays with a circuit listener that received addresses once (re-reserving there needs no new listener). */
  readonly #listening = new Set<string>()

  /** Throws ERR_BAD_NODE_ID (parseNodeId) when a token is keyed by something other than a node id. */
  constructor(opts: RelayAttemptsOptions) {
    this.#libp2p = opts.libp2p
    this.#parts = opts.parts
    this.#log = opts.log
    this.#attemptMs = opts.attemptMs
    for (const [id, token] of Object.entries(opts.tokens ?? {})) {
      this.#tokens.set(parseNodeId(id).toString(), token)
    }
  }

  /** The token this node presents to relay `id` (config `relayTokens`), if any. */
  token(id: string): string | undefined {
    return this.#tokens.get(id)
  }

  /** Dials and pings a relay; undefined (with the entry marked) when it does not answer in time. */
  async measure(c: Candidate): Promise<number | undefined> {
    try {
      const signal = AbortSignal.timeout(this.#attemptMs)
      await this.#libp2p.dial(c.addr, { signal })
      const rtt = await this.#libp2p.services.ping.ping(c.id, { signal })
      c.entry.rttMs = rtt
      if (c.entry.state !== 'home') c.entry.state = 'standby'
      delete c.entry.error
      return rtt
    } catch (err) {
      c.entry.state = 'unreachable'
      c.entry.error = new WarrenError(
        'ERR_RELAY_UNREACHABLE',
        `relay ${c.id} at ${c.addr} did not answer: ${(err as Error).message}`,
        {
          hint: 'Check that the relay runs (`warren relay status` on its machine) and that this address reaches it.',
        },
      ).toJSON()
      return undefined
    }
  }

  /** Asks `c` for a reservation (after its `/warren/relay/1.0.0` answer, when it is a Warren relay); throws why not. */
  async obtain(c: Candidate): Promise<RelayInfo | undefined> {
    const signal = AbortSignal.timeout(this.#attemptMs)
    // a Warren relay says up front whether it grants a reservation (and why not), so a refused attempt leaves no
    // half-made circuit listener behind in libp2p; other relays are simply asked for one
    const key = c.id.toString()
    const token = this.#tokens.get(key)
    const info = await queryRelayInfo(this.#libp2p, c.id, {
      signal,
      intent: 'reserve',
      ...(token === undefined ? {} : { token }),
    }).catch(() => undefined)
    if (info?.token === 'refused') {
      this.#log(
        'warn',
        `relay ${key} refused this node's token (relayTokens): ask the relay's operator for the current token`,
      )
    }
    if (info?.wouldRefuse != null) throw reservationRefused(key, undefined, info.wouldRefuse)
    try {
      if (this.#listening.has(key)) await this.#parts.store.addRelay(c.id, 'configured')
      else await this.#parts.listen([c.addr.encapsulate('/p2p-circuit')])
    } catch (err) {
      const status = relayStatusOf(err)
      if (status === undefined) {
        throw new WarrenError('ERR_RELAY_UNREACHABLE', `no reservation on relay ${c.id}: ${(err as Error).message}`, {
          cause: err,
        })
      }
      const why = await queryRelayInfo(this.#libp2p, c.id).catch(() => undefined)
      throw reservationRefused(key, status, why?.refusal?.kind === 'reservation' ? why.refusal.reason : undefined)
    }
    if (!this.#parts.store.hasReservation(c.id)) {
      throw new WarrenError('ERR_RELAY_UNREACHABLE', `relay ${c.id} granted no reservation`)
    }
    this.#listening.add(key)
    return info
  }
}
