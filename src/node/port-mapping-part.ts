/**
 * The port-mapping part of a node (config `traversal.portMapping`): a {@link PortMapper} for the node's TCP listen
 * port and its UDP direct-path socket, started in the background (node start never waits for the router). Every
 * mapping the router grants becomes a public address of the node, through libp2p's address manager: it is in
 * `getMultiaddrs()`, so in tickets, DHT records and identify, and libp2p dials public addresses before private ones.
 * The direct-path upgrade offers the mapped addresses too (a peer dials them before any punching), and a direct path
 * that went silent makes the mapper check with the router at once (a router restart loses mappings).
 *
 * {@link PortMappingPart.reconfigure} applies changed settings to a running node (`warren reload`): the mapper in use
 * stops (its mappings deleted at the router, their addresses taken out) and one with the new settings starts; turned
 * off, none starts, and a protocol switched off is not asked.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { multiaddr } from '@multiformats/multiaddr'
import type { Config } from '../config/schema.ts'
import type { Startable } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import type { UdxHub } from '../p2p/udx/transport.ts'
import { PortMapper, type PortMapperOptions } from '../traversal/portmap/port-mapper.ts'
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

type PortMappingConfig = Config['traversal']['portMapping']

export class PortMappingPart implements Startable {
  readonly #libp2p: WarrenLibp2p
  readonly #hub: UdxHub | undefined
  readonly #log: Logger
  readonly #overrides: Partial<PortMapperOptions>
  #mapper: PortMapper
  #settings: PortMappingConfig
  #started = false
  #announced: PortMapping[] = []
  /** The latest reconfiguration; the next one waits for it. */
  #reconfiguring: Promise<void> = Promise.resolve()

  /** `overrides`: mapper options that replace the defaults (the gateway and protocol clients, in tests). */
  constructor(
    libp2p: WarrenLibp2p,
    hub: UdxHub | undefined,
    config: Config,
    log: Logger,
    overrides: Partial<PortMapperOptions> = {},
  ) {
    this.#libp2p = libp2p
    this.#hub = hub
    this.#log = log
    this.#overrides = overrides
    this.#settings = { ...config.traversal.portMapping }
    this.#mapper = this.#makeMapper(this.#settings)
  }

  /** The mapper in use (replaced by {@link reconfigure}). */
  get mapper(): PortMapper {
    return this.#mapper
  }

  /** Whether `traversal.portMapping.enabled` is on in the settings applied. */
  get enabled(): boolean {
    return this.#settings.enabled
  }

  #makeMapper(pm: PortMappingConfig): PortMapper {
    const on = pm.enabled
    const libp2p = this.#libp2p
    const hub = this.#hub
    const mapper = new PortMapper({
      protocols: { pcp: on && pm.pcp, natPmp: on && pm.natPmp, upnp: on && pm.upnp },
      lifetimeS: pm.lifetimeS,
      log: this.#log,
      ports: (local) => {
        const tm = (libp2p as unknown as Internals).components?.transportManager
        const tcp = tcpListenPort(tm?.getAddrs() ?? libp2p.getMultiaddrs(), local)
        const udp = hub?.primary()?.address()
        const udpOk = udp !== undefined && (udp.host === '0.0.0.0' || udp.host === local)
        return { ...(tcp === undefined ? {} : { tcp }), ...(udpOk ? { udp: udp.port } : {}) }
      },
      ...this.#overrides,
    })
    mapper.addEventListener('change', () => this.#announce())
    return mapper
  }

  /**
   * Applies `config.traversal.portMapping` when it differs from the settings in use: the mapper in use stops (deleting
   * its mappings, bounded to 2 s) and one with the new settings starts when the part runs. Resolves `false` at once
   * when nothing changed, else `true` once the new mapper started (it maps in the background).
   */
  reconfigure(config: Config): Promise<boolean> {
    const next = { ...config.traversal.portMapping }
    const run = this.#reconfiguring.then(async () => {
      if (JSON.stringify(next) === JSON.stringify(this.#settings)) return false
      const old = this.#mapper
      this.#settings = next
      this.#mapper = this.#makeMapper(next)
      await old.stop()
      this.#announce()
      if (this.#started) this.#mapper.start()
      this.#log('info', `port mapping: settings applied (${describe(next)})`)
      return true
    })
    this.#reconfiguring = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  async start(): Promise<void> {
    this.#started = true
    this.#mapper.start()
  }

  async stop(): Promise<void> {
    this.#started = false
    await this.#reconfiguring
    await this.#mapper.stop()
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

/** `on: pcp, nat-pmp, upnp; lifetime 7200 s` or `off`. */
function describe(pm: PortMappingConfig): string {
  if (!pm.enabled) return 'off'
  const on = [pm.pcp ? 'pcp' : '', pm.natPmp ? 'nat-pmp' : '', pm.upnp ? 'upnp' : ''].filter((p) => p !== '')
  return `on: ${on.length === 0 ? 'no protocol' : on.join(', ')}; lifetime ${pm.lifetimeS} s`
}
