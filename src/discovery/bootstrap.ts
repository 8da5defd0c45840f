/**
 * Joining the DHT: connect to the bootstrap peers (a node's `relays` and `discovery.bootstrap`, a relay's
 * `discovery.bootstrap`) so that kad-dht puts them in its routing table, and connect again every 30 s to any of them
 * while the routing table is smaller than the bootstrap list. Failures are logged at debug level: a relay that is
 * down is reported by the home-relay logic already.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { routingTableSize, type WarrenKadDHT } from '../p2p/dht.ts'

const INTERVAL_MS = 30_000
const DIAL_TIMEOUT_MS = 5_000

interface Peer {
  id: PeerId
  addr: Multiaddr
}

export class Bootstrapper {
  readonly #libp2p: WarrenLibp2p
  readonly #dht: WarrenKadDHT
  readonly #peers: Peer[]
  readonly #log: (level: 'debug', message: string) => void
  #timer: NodeJS.Timeout | undefined

  constructor(
    libp2p: WarrenLibp2p,
    dht: WarrenKadDHT,
    addrs: readonly string[],
    log?: (l: 'debug', m: string) => void,
  ) {
    this.#libp2p = libp2p
    this.#dht = dht
    this.#log = log ?? (() => {})
    this.#peers = addrs.flatMap((text) => {
      const addr = multiaddr(text)
      const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (id === undefined || id === libp2p.peerId.toString()) return []
      return [{ id: peerIdFromString(id), addr }]
    })
  }

  start(): void {
    if (this.#peers.length === 0) return
    void this.#tick()
    this.#timer = setInterval(() => void this.#tick(), INTERVAL_MS)
    this.#timer.unref()
  }

  async #tick(): Promise<void> {
    if (routingTableSize(this.#dht) >= this.#peers.length) return
    await Promise.all(
      this.#peers.map(async (p) => {
        if (this.#libp2p.getConnections(p.id).length > 0) return
        try {
          await this.#libp2p.dial(p.addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        } catch (err) {
          this.#log('debug', `DHT bootstrap peer ${p.addr} not reachable: ${(err as Error).message}`)
        }
      }),
    )
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}
