/**
 * A Warren node in one process: the libp2p node, the service registry and host, the address book and the
 * forwards. The daemon wraps one of these behind the local API; tests and library users can use it directly.
 *
 * @example
 * ```ts
 * const node = await WarrenNode.start({ privateKey, config })
 * node.expose('web', { target: '/tcp/8080', allow: ['*'] })
 * const stream = await node.openService('laptop', 'web')   // a libp2p Stream, status already OK
 * ```
 */
import type { Duplex } from 'node:stream'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { accessBackend } from '../access/backend.ts'
import { type AddOptions, Forwarder, type ForwardSpec } from '../access/forward.ts'
import { checkService } from '../access/forward-check.ts'
import { LocalAccess } from '../access/local-access.ts'
import { AddressTable } from '../access/service-addresses.ts'
import type { Config, ServiceConfig } from '../config/schema.ts'
import { Discovery } from '../discovery/discovery.ts'
import type { LookupResult } from '../discovery/resolver.ts'
import { discoverySettings } from '../discovery/settings.ts'
import { WarrenError } from '../errors.ts'
import { AddressBook } from '../identity/address-book.ts'
import { formatNodeId, formatNodeIdBase36 } from '../identity/node-id.ts'
import { encodeTicket } from '../identity/ticket.ts'
import { openPingStream } from '../p2p/conn-ping.ts'
import { createNode, type WarrenLibp2p } from '../p2p/create.ts'
import { bestConnection, describePath } from '../p2p/path.ts'
import { abortLocal, describePipeEnd, type PipeResult, pipeStream } from '../p2p/pipe.ts'
import { PRESETS } from '../p2p/presets.ts'
import { UdxHub } from '../p2p/udx/transport.ts'
import { HomeRelay } from '../relay/client/home-relay.ts'
import { watchLimitedConnections } from '../relay/client/limited-connections.ts'
import { type OpenServiceOptions, openServiceStream } from '../services/dial.ts'
import { ServiceHost } from '../services/host.ts'
import { ServiceRegistry } from '../services/registry.ts'
import { type PunchAdmission, PunchGate } from '../traversal/punch/gate.ts'
import { DirectPaths } from '../traversal/upgrade/direct-paths.ts'
import { VERSION } from '../version.ts'
import type { WarrenNodeApi, WarrenNodeOptions, WarrenNodeStartOptions } from './api.ts'
import { Dialer } from './dial/dialer.ts'
import { KnownPeers, knownIdsOf } from './known-peers.ts'
import { StrangerGate } from './stranger-gate.ts'
import type {
  ForwardInfo,
  NetcheckResult,
  NodeIdentity,
  NodeStatus,
  PeerInfo,
  PingResult,
  ServiceInfo,
} from './types.ts'

export type { WarrenNodeApi, WarrenNodeOptions, WarrenNodeStartOptions } from './api.ts'

/** The implementation of {@link WarrenNodeApi}. */
export class WarrenNode implements WarrenNodeApi {
  readonly peerId: PeerId
  readonly libp2p: WarrenLibp2p
  readonly registry: ServiceRegistry
  readonly addressBook: AddressBook
  /** Service addresses handed out by the DNS server and mapped back by SOCKS5. */
  readonly addresses = new AddressTable()
  /** Lookups by id (cache, peers/tickets, mDNS, DHT) and this node's DHT record; see src/discovery. */
  discovery: Discovery | undefined
  readonly #host: ServiceHost
  #local: LocalAccess | undefined
  #dialer: Dialer | undefined
  readonly #forwarder: Forwarder
  /** The home relay (config `relays`); undefined when no relay is configured. */
  homeRelay: HomeRelay | undefined
  /** Direct-path upgrades of relayed connections (config `traversal`); undefined when off. */
  directPaths: DirectPaths | undefined
  /** Nodes named in `peers`, in an `allow` list or in `relays`: they always get a connection slot. */
  readonly known: KnownPeers
  /** The connection budget of all other nodes (config `limits.maxStrangerConnections…`). */
  readonly strangers: StrangerGate
  #unwatchLimits: () => void = () => {}
  readonly #config: Config
  readonly #log: NonNullable<WarrenNodeOptions['log']>
  readonly #started = Date.now()

  private constructor(
    libp2p: WarrenLibp2p,
    opts: WarrenNodeStartOptions,
    gates: { known: KnownPeers; strangers: StrangerGate },
  ) {
    this.libp2p = libp2p
    this.known = gates.known
    this.strangers = gates.strangers
    this.peerId = libp2p.peerId
    this.#config = opts.config
    this.#log = opts.log ?? (() => {})
    this.registry = new ServiceRegistry(opts.config.peers)
    // a forgotten learned node leaves the peer store too, unless connected: distinct tickets cannot grow memory
    this.addressBook = new AddressBook(opts.config.peers, opts.learned, {
      onEvict: (id) => {
        if (this.libp2p.getConnections().some((c) => c.remotePeer.toString() === id)) return
        void this.libp2p.peerStore.delete(peerIdFromString(id)).catch(() => {})
      },
    })
    const preset = PRESETS[opts.preset ?? 'default']
    this.#host = new ServiceHost(libp2p, this.registry, {
      ...opts.config.limits,
      maxStreamsPerConnection: preset.maxServiceStreamsPerConnection,
      log: this.#log,
    })
    this.#forwarder = new Forwarder(
      (socket, node, service, addrs) => this.pipeService(socket, node, service, addrs ? { addrs } : {}),
      (node, service, addrs) => this.checkService(node, service, addrs ? { addrs } : {}),
      this.#log,
      { allowOtherUsers: opts.config.proxy?.allowOtherUsers === true },
    )
  }

  /** Starts a node: libp2p up, config services registered, service protocol handled. */
  static async start(opts: WarrenNodeStartOptions): Promise<WarrenNode> {
    const traversal = opts.config.traversal.enabled
    const udxHub = traversal ? new UdxHub() : undefined
    const udpListen =
      opts.udpListen ?? (opts.preset === 'test' ? ['/ip4/127.0.0.1/udp/0'] : opts.config.traversal.udpListen)
    const known = new KnownPeers(knownIdsOf(opts.config))
    const strangers = new StrangerGate(opts.config.limits, opts.log)
    strangers.setKnown((id) => known.has(id))
    const libp2p = await createNode({
      privateKey: opts.privateKey,
      listen: [...(opts.listen ?? opts.config.listen), ...(traversal ? udpListen : [])],
      announce: opts.config.announce,
      preset: opts.preset ?? 'default',
      connectionGater: strangers.gater(),
      maxConnections: PRESETS[opts.preset ?? 'default'].maxConnections + opts.config.limits.maxStrangerConnections,
      ...(udxHub === undefined ? {} : { udxHub }),
      ...(opts.skipUnheardEvents === true ? { skipUnheardEvents: true } : {}),
      ...Discovery.nodeOptions(opts.config, opts.listen ?? opts.config.listen),
    })
    const node = new WarrenNode(libp2p, opts, { known, strangers })
    try {
      for (const [name, svc] of Object.entries(opts.config.services)) node.registry.add(name, svc, 'config')
      node.#refreshKnown()
      known.attach(libp2p)
      await node.#host.start()
      node.#local = await LocalAccess.start({
        config: opts.config,
        backend: accessBackend(node),
        addresses: node.addresses,
        addressBook: node.addressBook,
        accessListen: opts.accessListen ?? (opts.preset === 'test' ? '127.0.0.1:0' : undefined),
        dnsListen: opts.dnsListen,
        gatewayFastPath: opts.gatewayFastPath,
        log: node.#log,
      })
      node.#unwatchLimits = watchLimitedConnections(libp2p, node.#log)
      const settings = discoverySettings(opts.config)
      node.discovery = Discovery.start(libp2p, { privateKey: opts.privateKey, settings, log: node.#log })
      node.#dialer = new Dialer(libp2p, node.addressBook, node.discovery, {
        dialTimeoutMs: opts.config.limits.dialTimeoutMs,
      })
      if (opts.config.relays.length > 0) {
        node.homeRelay = new HomeRelay(libp2p, opts.config.relays, { log: node.#log })
        await node.homeRelay.start()
      }
      if (udxHub !== undefined) {
        const punches = new PunchGate({
          perPeer: opts.config.traversal.punchRequestsPerPeer,
          strangersPerMinute: opts.config.traversal.punchRequestsPerMinute,
          admission: (peer) => node.#punchAdmission(peer),
        })
        node.directPaths = new DirectPaths(libp2p, udxHub, {
          relays: opts.config.relays,
          log: node.#log,
          tcp: opts.config.traversal.tcp,
          admit: (peer) => punches.check(peer),
        })
        await node.directPaths.start()
      }
    } catch (err) {
      await node.directPaths?.stop()
      node.homeRelay?.stop()
      node.discovery?.stop()
      await node.#local?.close()
      await libp2p.stop()
      throw err
    }
    return node
  }

  identity(): NodeIdentity {
    const own = this.libp2p.getMultiaddrs().map((a) => a.decapsulateCode(CODE_P2P))
    // every configured relay's circuit address too, so the ticket still works after a move to another relay
    const relayed = this.homeRelay?.ticketAddrs() ?? []
    const addrs = [...new Map([...own, ...relayed].map((a) => [a.toString(), a])).values()]
    return {
      id: formatNodeId(this.peerId),
      idBase36: formatNodeIdBase36(this.peerId),
      ticket: encodeTicket({ id: this.peerId, addrs }),
      shortTicket: encodeTicket({ id: this.peerId, addrs: relayed.slice(0, 1) }),
      addrs: addrs.map(String),
    }
  }

  status(): NodeStatus {
    return {
      ...this.identity(),
      version: VERSION,
      uptimeMs: Date.now() - this.#started,
      services: this.services(),
      peers: this.peers(),
      forwards: this.forwards(),
      streams: this.#host.stats(),
      ...this.#local?.status(),
      ...(this.homeRelay === undefined ? {} : { relay: this.homeRelay.status() }),
      ...(this.discovery === undefined ? {} : { discovery: this.discovery.status() }),
    }
  }

  /** Known nodes from `peers`, `relays` and the allow lists of the services exposed now. */
  #refreshKnown(): void {
    const allowed = this.registry.list().map((s) => this.registry.get(s.name)?.allowed)
    this.known.set(knownIdsOf(this.#config, allowed))
  }

  /** Why `peer` may ask this node to punch (src/traversal/punch/gate.ts). */
  #punchAdmission(peer: PeerId): PunchAdmission {
    if (this.known.has(peer.toString())) return 'known'
    if (this.registry.list().some((s) => this.registry.get(s.name)?.public === true)) return 'public'
    if (this.libp2p.getConnections(peer).some((c) => c.direction === 'outbound' && c.status === 'open'))
      return 'dialled'
    return undefined
  }

  expose(name: string, service: ServiceConfig | string, opts: { replace?: boolean } = {}): ServiceInfo {
    const entry = this.registry.add(name, service, 'runtime', opts.replace ?? false)
    this.#refreshKnown()
    void this.#host.syncKubo().catch((err: Error) => this.#log('error', `kubo handlers: ${err.message}`))
    this.#log('info', `exposed ${name} → ${entry.target}`)
    return this.registry.list().find((s) => s.name === name)!
  }

  unexpose(name: string): void {
    this.registry.remove(name)
    this.#refreshKnown()
    void this.#host.syncKubo().catch((err: Error) => this.#log('error', `kubo handlers: ${err.message}`))
    this.#log('info', `unexposed ${name}`)
  }

  services(): ServiceInfo[] {
    return this.registry.list()
  }

  peers(): PeerInfo[] {
    const ids = new Map<string, PeerId>()
    for (const id of this.addressBook.peerIds()) ids.set(id.toString(), id)
    for (const c of this.libp2p.getConnections()) ids.set(c.remotePeer.toString(), c.remotePeer)
    const learned = this.addressBook.learned()
    return [...ids.values()].map((id) => {
      const conn = bestConnection(this.libp2p.getConnections(id))
      const info: PeerInfo = {
        id: id.toString(),
        aliases: this.addressBook.aliasesOf(id.toString()),
        connected: conn !== undefined,
        addrs: learned[id.toString()] ?? [],
      }
      if (conn !== undefined) info.path = describePath(conn)
      const upgrade = this.directPaths?.status()[id.toString()]
      if (upgrade !== undefined) info.upgrade = upgrade
      return info
    })
  }

  /** Addresses learned from tickets and --addr, for the daemon to persist. */
  learnedAddresses(): Record<string, string[]> {
    return this.addressBook.learned()
  }

  lookup(node: string, opts: { fresh?: boolean; all?: boolean } = {}): Promise<LookupResult> {
    const target = this.addressBook.resolve(node)
    return this.discovery!.lookup(target.id, { configAddrs: target.addrs, ...opts })
  }

  /**
   * Resolves and connects, reusing an open connection (direct preferred). `allowNewAddresses: false` refuses a ticket
   * or address this node does not already know (ERR_UNKNOWN_ADDRESSES) instead of dialing it.
   */
  connect(
    node: string,
    opts: { addrs?: string[]; signal?: AbortSignal; allowNewAddresses?: boolean } = {},
  ): Promise<Connection> {
    return this.#dialer!.connect(node, opts)
  }

  async openService(
    node: string,
    service: string,
    opts: { addrs?: string[]; signal?: AbortSignal; allowNewAddresses?: boolean } = {},
  ): Promise<Stream> {
    const conn = await this.connect(node, opts)
    const streamOpts: OpenServiceOptions = {
      selfId: this.peerId.toString(),
      timeoutMs: this.#config.limits.connectTimeoutMs + 10_000,
    }
    if (opts.signal !== undefined) streamOpts.signal = opts.signal
    return openServiceStream(conn, service, streamOpts)
  }

  async pipeService(
    local: Duplex,
    node: string,
    service: string,
    opts: { addrs?: string[] } = {},
  ): Promise<PipeResult> {
    let stream: Stream
    try {
      stream = await this.openService(node, service, opts)
    } catch (err) {
      abortLocal(local, err as Error)
      throw err
    }
    const res = await pipeStream(stream, local)
    this.#log(res.error === undefined ? 'debug' : 'warn', describePipeEnd(`forward to ${node}/${service}`, res))
    return res
  }

  /**
   * Opens one service stream and closes it again once the host answered OK (src/access/forward-check.ts), within
   * 2 × limits.dialTimeoutMs (a dial, and one more after a fresh lookup) + limits.connectTimeoutMs (the host's connect
   * to its target): 25 s with the defaults.
   */
  checkService(node: string, service: string, opts: { addrs?: string[] } = {}): Promise<void> {
    const { dialTimeoutMs, connectTimeoutMs } = this.#config.limits
    return checkService((n, s, o) => this.openService(n, s, o), node, service, {
      ...opts,
      timeoutMs: 2 * dialTimeoutMs + connectTimeoutMs,
    })
  }

  addForward(spec: ForwardSpec, opts: AddOptions = {}): Promise<ForwardInfo> {
    this.addressBook.resolve(spec.node, spec.addrs) // fail early on a bad name
    return this.#forwarder.add(spec, opts)
  }

  removeForward(listen: string): Promise<void> {
    return this.#forwarder.remove(listen)
  }

  forwards(): ForwardInfo[] {
    return this.#forwarder.list()
  }

  async ping(node: string, opts: { addrs?: string[] } = {}): Promise<PingResult> {
    const conn = await this.connect(node, opts)
    // on the connection chosen (the direct one when there is one), so that the path printed is the path timed; also a
    // relayed connection with limits, which libp2p's ping by peer id would not use
    try {
      const pinger = await openPingStream(conn, 10_000)
      try {
        return { id: conn.remotePeer.toString(), rttMs: await pinger.once(), path: describePath(conn) }
      } finally {
        await pinger.close()
      }
    } catch (err) {
      throw new WarrenError('ERR_TIMEOUT', `ping to ${conn.remotePeer} failed: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }

  /** UDP reachability and NAT behaviour as the relays' STUN responders see it (`warren netcheck`). */
  async netcheck(): Promise<NetcheckResult> {
    if (this.directPaths === undefined) {
      throw new WarrenError('ERR_NO_DIRECT_PATH', 'direct paths are off (traversal.enabled is false)', {
        hint: 'Set "traversal": { "enabled": true } in config.json.',
      })
    }
    const report = await this.directPaths.netcheck()
    const relay = this.homeRelay?.status()
    return {
      ...report,
      home: relay?.home ?? null,
      relays: (relay?.relays ?? []).map(({ id, addr, state, rttMs }) =>
        rttMs === undefined ? { id, addr, state } : { id, addr, state, rttMs },
      ),
    }
  }

  async stop(): Promise<void> {
    this.discovery?.stop()
    await this.directPaths?.stop()
    this.homeRelay?.stop()
    this.#unwatchLimits()
    await this.#local?.close()
    await this.#forwarder.closeAll()
    await this.#host.stop()
    await this.libp2p.stop()
  }
}

const CODE_P2P = 421
