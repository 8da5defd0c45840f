/**
 * Connection slots for strangers. A node is *known* when it is named in config `peers`, in any service's `allow` list,
 * or is a relay in config `relays`; every other node is a stranger. Known nodes always get in: libp2p's connection
 * limit is raised by the strangers' budget (src/p2p/create.ts), and known nodes are tagged in the peer store so that
 * libp2p's pruner closes strangers' connections first. Strangers share a budget of their own, checked once the Noise
 * handshake has proved who they are (`denyInboundEncryptedConnection`): at most `maxStrangerConnections` inbound
 * connections in all, at most `maxStrangerConnectionsPerIp` from one IP address (one /64 for IPv6), and at most
 * `maxStrangerConnectionsPerRelay` through one relay (every relayed connection comes from its relay's address, so
 * relayed strangers are counted per relay, not per IP).
 *
 * A slot is held from the handshake until the connection closes; a held slot whose peer has become known since (say
 * `warren expose … --allow` named it) no longer counts.
 *
 * @example
 * ```ts
 * const gate = new StrangerGate(config.limits)
 * const libp2p = await createNode({ privateKey, connectionGater: gate.gater() })
 * gate.setKnown((id) => knownIds.has(id))
 * ```
 */

import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { connectionSource } from '../p2p/connection-source.ts'

export interface StrangerLimits {
  /** Inbound connections from strangers at once, all together. */
  maxStrangerConnections: number
  /** Inbound connections from strangers at once from one IP address (IPv6: one /64). */
  maxStrangerConnectionsPerIp: number
  /** Relayed inbound connections from strangers at once through one relay. */
  maxStrangerConnectionsPerRelay: number
}

/** Why a stranger's connection was refused. */
export type StrangerRefusal = 'total' | 'ip' | 'relay'

export interface StrangerGateStats {
  /** Slots held by strangers now. */
  strangers: number
  /** Connections refused since start, by reason. */
  refused: Record<StrangerRefusal, number>
}

export class StrangerGate {
  readonly #limits: StrangerLimits
  readonly #log: Logger
  #isKnown: (id: string) => boolean = () => false
  /** Slots held: raw connection → stranger id and source. */
  readonly #held = new Map<MultiaddrConnection, { peer: string; source: string }>()
  readonly #refused: Record<StrangerRefusal, number> = { total: 0, ip: 0, relay: 0 }
  /** When the last refusal was logged (one line per minute at most: a flood must not flood the log). */
  #loggedAt = 0

  constructor(limits: StrangerLimits, log?: Logger) {
    this.#limits = limits
    this.#log = log ?? (() => {})
  }

  /** Sets the test for known nodes (base58 id → known); read on every inbound connection. */
  setKnown(isKnown: (id: string) => boolean): void {
    this.#isKnown = isKnown
  }

  /** The libp2p connection gater that applies the budget. */
  gater(): ConnectionGater {
    return { denyInboundEncryptedConnection: (peer, maConn) => this.#deny(peer, maConn) }
  }

  stats(): StrangerGateStats {
    let strangers = 0
    for (const h of this.#held.values()) if (!this.#isKnown(h.peer)) strangers++
    return { strangers, refused: { ...this.#refused } }
  }

  #deny(peer: PeerId, maConn: MultiaddrConnection): boolean {
    const id = peer.toString()
    if (this.#isKnown(id)) return false
    const source = connectionSource(maConn.remoteAddr)
    const relayed = source.startsWith('relay ')
    let total = 0
    let same = 0
    for (const h of this.#held.values()) {
      if (this.#isKnown(h.peer)) continue
      total++
      if (h.source === source) same++
    }
    const { maxStrangerConnections, maxStrangerConnectionsPerIp, maxStrangerConnectionsPerRelay } = this.#limits
    let refusal: StrangerRefusal | undefined
    if (total >= maxStrangerConnections) refusal = 'total'
    else if (relayed && same >= maxStrangerConnectionsPerRelay) refusal = 'relay'
    else if (!relayed && source !== 'other' && same >= maxStrangerConnectionsPerIp) refusal = 'ip'
    if (refusal !== undefined) {
      this.#refused[refusal]++
      const now = Date.now()
      if (now - this.#loggedAt > 60_000) {
        this.#loggedAt = now
        const limit =
          refusal === 'total'
            ? `limits.maxStrangerConnections (${maxStrangerConnections})`
            : refusal === 'relay'
              ? `limits.maxStrangerConnectionsPerRelay (${maxStrangerConnectionsPerRelay}) from ${source}`
              : `limits.maxStrangerConnectionsPerIp (${maxStrangerConnectionsPerIp}) from ${source}`
        this.#log(
          'warn',
          `refused a connection from ${id}, a node not named in peers, allow or relays: ${limit} reached`,
        )
      }
      return true
    }
    this.#held.set(maConn, { peer: id, source })
    const release = (): void => {
      this.#held.delete(maConn)
    }
    maConn.addEventListener('close', release, { once: true })
    if (maConn.status !== 'open') release()
    return false
  }
}
