/**
 * Connections to a relay per IP address. Every reservation holds a connection, but a host can also hold connections
 * that reserve nothing (a new key per connection costs nothing) up to the relay's `maxConnections`, and shut every
 * other node out. So the relay keeps at most `limits.maxConnectionsPerIp` connections at once from one IP address
 * (IPv6: one /64) of nodes not on its allow list, counted once the Noise handshake has named the node; the next one is
 * closed at once. Allowed nodes are not counted, nor are WebSocket clients that come through the relay's reverse
 * proxy (`behindProxy`: they all come from its address).
 *
 * @example
 * ```ts
 * const ipCap = new IpCap({ perIp: () => 128, isAllowed: (id) => policy.isAllowed(id), log })
 * createNode({ connectionGater: { ...hooks.gater, ...ipCap.gater() } })
 * ```
 */
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LogThrottle } from '../../log-throttle.ts'
import { connectionSource } from '../../p2p/connection-source.ts'

export interface IpCapOptions {
  /** The cap, read at each connection (a reload may change it). */
  perIp: () => number
  /** Whether a node is on the allow list (or admitted by a token), read at each connection. */
  isAllowed: (id: string) => boolean
  /** Whether a remote address is the relay's own reverse proxy. */
  proxied?: (addr: Multiaddr) => boolean
  /** Where a refusal is logged, at most once per 10 s with a count of the others. */
  log: (line: string) => void
}

export class IpCap {
  readonly #opts: IpCapOptions
  /** Counted connections per source (`ip <address or /64>`). */
  readonly #perSource = new Map<string, number>()
  readonly #throttle: LogThrottle
  #refused = 0

  constructor(opts: IpCapOptions) {
    this.#opts = opts
    this.#throttle = new LogThrottle({ intervalMs: 10_000, emit: opts.log })
  }

  /** Connections refused since start. */
  get refused(): number {
    return this.#refused
  }

  /** Connections counted now from `source` (`ip 198.18.0.7`, `ip 2001:db8:1:2::/64`). */
  held(source: string): number {
    return this.#perSource.get(source) ?? 0
  }

  gater(): Pick<ConnectionGater, 'denyInboundEncryptedConnection'> {
    return { denyInboundEncryptedConnection: (peer, maConn) => this.#deny(peer, maConn) }
  }

  #deny(peer: PeerId, maConn: MultiaddrConnection): boolean {
    const id = peer.toString()
    if (this.#opts.isAllowed(id) || this.#opts.proxied?.(maConn.remoteAddr) === true) return false
    const source = connectionSource(maConn.remoteAddr)
    if (!source.startsWith('ip ')) return false
    const held = this.held(source)
    const cap = this.#opts.perIp()
    if (held >= cap) {
      this.#refused++
      this.#throttle.log(
        source,
        `refused a connection from ${id} at ${source.slice(3)}: limits.maxConnectionsPerIp (${cap}) reached`,
        'refused connections',
      )
      return true
    }
    this.#perSource.set(source, held + 1)
    const release = (): void => {
      const n = this.held(source) - 1
      if (n <= 0) this.#perSource.delete(source)
      else this.#perSource.set(source, n)
    }
    if (maConn.status !== 'open') release()
    else maConn.addEventListener('close', release, { once: true })
    return false
  }
}
