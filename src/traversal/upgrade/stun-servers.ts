/**
 * The STUN servers direct paths use: the relays' STUN responders. The host is a relay's IP address (from config
 * `relays`, or the relay a relayed connection runs through), the port the one the relay announces on
 * `/warren/relay/1.0.0`. Relays that did not answer are asked again every 30 s.
 *
 * @packageDocumentation
 */
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { isHostLocal } from '../../discovery/host-local.ts'
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import { parseRelayAddr } from '../../relay/client/home-relay.ts'
import { queryRelayInfo } from '../../relay/info.ts'

/** How often relays that gave no STUN port are asked again, ms. */
const RELEARN_MS = 30_000

const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.host === b.host && a.port === b.port

/** The relay a relayed connection runs through: `/…/p2p/<relay>/p2p-circuit/…` → the part before `/p2p-circuit`. */
function relayOf(conn: Connection): string | undefined {
  const addr = conn.remoteAddr.toString()
  const i = addr.indexOf('/p2p-circuit')
  return i > 0 ? addr.slice(0, i) : undefined
}

export class StunServers {
  readonly #libp2p: WarrenLibp2p
  readonly #relays: readonly string[]
  readonly #log: Logger
  /** STUN endpoints learned per relay address. */
  readonly #learned = new Map<string, Endpoint>()
  #stopped = false
  #timer: NodeJS.Timeout | undefined

  /** `relays`: config `relays` (`…/p2p/<relay id>`). */
  constructor(libp2p: WarrenLibp2p, relays: readonly string[], log: Logger) {
    this.#libp2p = libp2p
    this.#relays = relays
    this.#log = log
  }

  /** Asks every configured relay now (without waiting), and those that did not answer again later. */
  start(): void {
    void this.learnAll()
    if (this.#relays.length > 0) {
      this.#timer = setInterval(() => {
        if (this.#relays.some((r) => !this.#learned.has(r))) void this.learnAll()
      }, RELEARN_MS)
      this.#timer.unref()
    }
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#timer)
  }

  /** The STUN servers known so far, without duplicates. */
  list(): Endpoint[] {
    const out: Endpoint[] = []
    for (const e of this.#learned.values()) if (!out.some((o) => sameEndpoint(o, e))) out.push(e)
    return out
  }

  /** Asks every configured relay that gave no STUN port yet. */
  async learnAll(): Promise<void> {
    await Promise.all(this.#relays.map((r) => this.learn(r)))
  }

  /**
   * Asks the relay a relayed connection runs through, unless known. A loopback or link-local relay address that is
   * not in config `relays` came from elsewhere (another host's ticket) and names this host, not the relay: skipped.
   */
  async learnFrom(via: Connection): Promise<void> {
    const relay = relayOf(via)
    if (relay === undefined) return
    if (isHostLocal(multiaddr(relay)) && !this.#relays.includes(relay)) return
    await this.learn(relay)
  }

  /** Asks a relay for its STUN port; the host is the relay's IP address. Failures leave the relay out. */
  async learn(relayAddr: string): Promise<void> {
    if (this.#learned.has(relayAddr) || this.#stopped) return
    try {
      const { id, addr } = parseRelayAddr(relayAddr)
      const host = addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
      if (host === undefined) return
      const signal = AbortSignal.timeout(5_000)
      await this.#libp2p.dial(multiaddr(relayAddr), { signal }) // the relay may not be in the peer store yet
      const info = await queryRelayInfo(this.#libp2p, id, { signal })
      if (info.stun !== null) this.#learned.set(relayAddr, { host, port: info.stun.port })
    } catch (err) {
      this.#log('debug', `no STUN port from relay ${relayAddr}: ${(err as Error).message}`)
    }
  }
}
