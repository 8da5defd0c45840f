/**
 * The port-mapping part of a node (config `traversal.portMapping`): a {@link PortMapper} for the node's TCP listen
 * port and its UDP direct-path socket, started in the background (node start never waits for the router). Every
 * mapping the router grants becomes a public address of the node, through libp2p's address manager: it is in
 * `getMultiaddrs()`, so in tickets, DHT records and identify, and libp2p dials public addresses before private ones.
 * The direct-path upgrade offers the mapped addresses too (a peer dials them before any punching), and a direct path
 * that went silent makes the mapper check with the router at once (a router restart loses mappings).
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { multiaddr } from '@multiformats/multiaddr'
import type { Config } from '../config/schema.ts'
import type { Startable } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import type { UdxHub } from '../p2p/udx/transport.ts'
import { PortMapper } from '../traversal/portmap/port-mapper.ts'
import type { PortMapping, PortMapStatus } from '../traversal/portmap/types.ts'

/** The parts of libp2p's address manager this uses. */
interface AddressManagerLike {
  addPublicAddressMapping(ip: string, port: number, extIp: string, extPort: number, protocol: 'tcp' | 'udp'): void
  removePublicAddressMapping(ip: string, port: number, extIp: string, extPort: number, protocol: 'tcp' | 'udp'): void
  confirmObservedAddr(addr: Multiaddr, options?: { type?: string; ttl?: number }): void
}

interface Internals {
  components?: {
    addressManager?: AddressManagerLike
    transportManager?: { getAddrs(): Multiaddr[] }
  }
}

/** How long libp2p keeps a mapped address as confirmed: until removed (a year). */
const CONFIRMED_MS = 365 * 24 * 3600 * 1000

const split = (hostPort: string): [string, number] => {
  const i = hostPort.lastIndexOf(':')
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))]
}

/** The TCP port libp2p listens on for `local` (a wildcard listener counts), not WebSocket or relay addresses. */
export function tcpListenPort(addrs: readonly Multiaddr[], local: string): number | undefined {
  for (const a of addrs) {
    const parts = a.getComponents()
    if (parts.length !== 2 || parts[0]?.name !== 'ip4' || parts[1]?.name !== 'tcp') continue
    const host = parts[0].value
    if (host === '0.0.0.0' || host === local) return Number(parts[1].value)
  }
  return undefined
}

export class PortMappingPart implements Startable {
  readonly mapper: PortMapper
  readonly #libp2p: WarrenLibp2p
  readonly #log: Logger
  #announced: PortMapping[] = []

  constructor(libp2p: WarrenLibp2p, hub: UdxHub | undefined, config: Config, log: Logger) {
    this.#libp2p = libp2p
    this.#log = log
    const pm = config.traversal.portMapping
    const on = pm.enabled
    this.mapper = new PortMapper({
      protocols: { pcp: on && pm.pcp, natPmp: on && pm.natPmp, upnp: on && pm.upnp },
      lifetimeS: pm.lifetimeS,
      log,
      ports: (local) => {
        const tm = (libp2p as unknown as Internals).components?.transportManager
        const tcp = tcpListenPort(tm?.getAddrs() ?? libp2p.getMultiaddrs(), local)
        const udp = hub?.primary()?.address()
        const udpOk = udp !== undefined && (udp.host === '0.0.0.0' || udp.host === local)
        return { ...(tcp === undefined ? {} : { tcp }), ...(udpOk ? { udp: udp.port } : {}) }
      },
    })
    this.mapper.addEventListener('change', () => this.#announce())
  }

  async start(): Promise<void> {
    this.mapper.start()
  }

  async stop(): Promise<void> {
    await this.mapper.stop()
    this.#announce()
  }

  status(): PortMapStatus {
    return this.mapper.status()
  }

  /** The mapped addresses as multiaddrs (`/ip4/<ext>/tcp/<port>`, `/ip4/<ext>/udp/<port>`), TCP first. */
  addrs(): string[] {
    return this.mapper
      .mappings()
      .sort((a, b) => (a.transport === b.transport ? 0 : a.transport === 'tcp' ? -1 : 1))
      .map((m) => {
        const [host, port] = split(m.external)
        return `/ip4/${host}/${m.transport}/${port}`
      })
  }

  /** Asks the router again now (a direct path went silent: the router may have restarted). */
  refresh(why: string): void {
    this.mapper.refresh(why)
  }

  /** Puts the mappings held now into libp2p's addresses, and takes out those no longer held. */
  #announce(): void {
    const am = (this.#libp2p as unknown as Internals).components?.addressManager
    if (am === undefined) return
    const now = this.mapper.mappings()
    const key = (m: PortMapping): string => `${m.transport} ${m.internal} ${m.external}`
    const keep = new Set(now.map(key))
    for (const m of this.#announced) {
      if (keep.has(key(m))) continue
      const [ip, port] = split(m.internal)
      const [extIp, extPort] = split(m.external)
      am.removePublicAddressMapping(ip, port, extIp, extPort, m.transport)
    }
    const had = new Set(this.#announced.map(key))
    for (const m of now) {
      if (had.has(key(m))) continue
      const [ip, port] = split(m.internal)
      const [extIp, extPort] = split(m.external)
      am.addPublicAddressMapping(ip, port, extIp, extPort, m.transport)
      // confirmed until the mapper drops it (it renews before the router's lifetime ends)
      am.confirmObservedAddr(multiaddr(`/ip4/${extIp}/${m.transport}/${extPort}`), {
        type: 'ip-mapping',
        ttl: CONFIRMED_MS,
      })
      this.#log('debug', `announcing mapped address /ip4/${extIp}/${m.transport}/${extPort}`)
    }
    this.#announced = now
  }
}
