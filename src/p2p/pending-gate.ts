/**
 * Handshakes in progress, per source. libp2p takes at most `maxIncomingPendingConnections` inbound connections in
 * their handshake at once and refuses every other inbound connection until one of them finishes or reaches its
 * 10-s upgrade time-out. So one host that opens that many TCP connections and sends nothing shut every other node
 * out, and 6.4 new connections a second from it kept them shut out (64 on a node, 256 on a relay).
 *
 * This gate lets one source hold at most `perIp` of those slots (`perRelay` for the relayed connections through one
 * relay, which all come from the relay's address): its next connection is refused at once, before any slot is taken
 * for long, and the other sources keep theirs. A slot counts from the connection's arrival until its Noise handshake
 * is done (`denyInboundEncryptedConnection`) or it closes. Loopback connections are not counted (tests, and a
 * reverse proxy on the same machine, bring every client from 127.0.0.1).
 *
 * @example
 * ```ts
 * const gate = new PendingGate({ perIp: 8, perRelay: 32 })
 * createLibp2p({ connectionGater: gate.wrap(otherGater) })
 * ```
 */
import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface'
import { connectionSource } from './connection-source.ts'

export interface PendingLimits {
  /** Inbound connections in their handshake at once from one IP address (IPv6: one /64). */
  perIp: number
  /** Relayed inbound connections in their handshake at once through one relay. */
  perRelay: number
}

const LOOPBACK = /^ip (127\.|0:0:0:0::\/64$)/

export class PendingGate {
  readonly #limits: PendingLimits
  /** Handshakes in progress per source. */
  readonly #pending = new Map<string, number>()
  /** The connections counted, and their source. */
  readonly #counted = new Map<MultiaddrConnection, string>()
  #refused = 0

  constructor(limits: PendingLimits) {
    this.#limits = limits
  }

  /** Connections refused since start because their source was at its limit. */
  get refused(): number {
    return this.#refused
  }

  /** Handshakes in progress now, all sources together (loopback not counted). */
  get pending(): number {
    return this.#counted.size
  }

  /** True when `maConn` is refused: its source already holds its share of the handshake slots. */
  arrived(maConn: MultiaddrConnection): boolean {
    const source = connectionSource(maConn.remoteAddr)
    if (source === 'other' || LOOPBACK.test(source)) return false
    const n = this.#pending.get(source) ?? 0
    if (n >= (source.startsWith('relay ') ? this.#limits.perRelay : this.#limits.perIp)) {
      this.#refused++
      return true
    }
    this.#pending.set(source, n + 1)
    this.#counted.set(maConn, source)
    maConn.addEventListener('close', () => this.done(maConn), { once: true })
    return false
  }

  /** `maConn`'s handshake is over (done, failed or closed); a second call does nothing. */
  done(maConn: MultiaddrConnection): void {
    const source = this.#counted.get(maConn)
    if (source === undefined) return
    this.#counted.delete(maConn)
    const n = (this.#pending.get(source) ?? 1) - 1
    if (n === 0) this.#pending.delete(source)
    else this.#pending.set(source, n)
  }

  /** `gater` (a plain object of deny functions, or none) with this gate's two checks before its own. */
  wrap(gater: ConnectionGater = {}): ConnectionGater {
    return {
      ...gater,
      denyInboundConnection: async (maConn) =>
        this.arrived(maConn) || (await gater.denyInboundConnection?.(maConn)) === true,
      denyInboundEncryptedConnection: async (peer, maConn) => {
        this.done(maConn)
        return (await gater.denyInboundEncryptedConnection?.(peer, maConn)) === true
      },
    }
  }
}
