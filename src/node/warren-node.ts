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
import { type AddOptions, Forwarder, type ForwardSpec } from '../access/forward.ts'
import { LocalAccess } from '../access/local-access.ts'
import { AddressTable } from '../access/service-addresses.ts'
import type { Config, ServiceConfig } from '../config/schema.ts'
import { Discovery } from '../discovery/discovery.ts'
import type { LookupResult } from '../discovery/resolver.ts'
import { discoverySettings } from '../discovery/settings.ts'
import { AddressBook, type ResolvedNode } from '../identity/address-book.ts'
import { part, type Startable, type StartedParts, startInOrder } from '../lifecycle.ts'
import { processDescriptors } from '../open-files.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import type { PipeResult } from '../p2p/pipe.ts'
import { RelayAdmits } from '../relay/client/admits.ts'
import { HomeRelay } from '../relay/client/home-relay.ts'
import type { RelayLinks } from '../relay/client/relay-links.ts'
import type { RpcMethods } from '../rpc/methods.ts'
import { ServiceHost } from '../services/host.ts'
import { ServiceRegistry } from '../services/registry.ts'
import { logStreams, StreamCounters } from '../services/stream-counters.ts'
import type { DirectPaths } from '../traversal/upgrade/direct-paths.ts'
import { VERSION } from '../version.ts'
import type { WarrenNodeApi, WarrenNodeOptions, WarrenNodeStartOptions } from './api.ts'
import { descriptorsPart } from './descriptors-part.ts'
import { type ConnectOptions, Dialer } from './dial/dialer.ts'
import { directPathsFor, punchAdmission } from './direct-paths-part.ts'
import { type KnownPeers, knownIdsOf } from './known-peers.ts'
import { createNodeLibp2p, type NodeLibp2p, stunUrl, type WebRtcState } from './node-libp2p.ts'
import { NodeRpc } from './node-rpc.ts'
import { OutgoingServices } from './outgoing-services.ts'
import { PortMappingPart } from './port-mapping-part.ts'
import { relayWatchPart } from './relay-watch-part.ts'
import { applyConfig, type ReloadResult } from './reload.ts'
import { identityOf, netcheckOf, peersOf, pingNode, streamsOf } from './reports.ts'
import type { StrangerGate } from './stranger-gate.ts'
import type {
  ForwardInfo,
  NetcheckResult,
  NodeIdentity,
  NodeStatus,
  PeerInfo,
  PingResult,
  RemoteCallResult,
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
  readonly discovery: Discovery
  readonly #host: ServiceHost
  /** Watch of the connections to relays (src/relay/client/relay-links.ts), while started. */
  #relayLinks: RelayLinks | undefined
  /** Service streams both ways: bytes, open, ends by cause, per service and per peer (`warren status`, /metrics). */
  readonly streamCounters = new StreamCounters()
  /** This node's RPC methods: `node.rpc.register(name, handler, { allow })` adds one (docs/rpc.md). */
  readonly rpc: RpcMethods
  readonly #rpc: NodeRpc
  #local: LocalAccess | undefined
  readonly #dialer: Dialer
  readonly #forwarder: Forwarder
  readonly #outgoing: OutgoingServices
  /** The home relay (config `relays`); undefined when no relay is configured. */
  readonly homeRelay: HomeRelay | undefined
  /**
   * Tells the relays whom this node admits, so that they do not bound circuits from those nodes (browsers); `flush()`
   * sends a change at once and resolves when the relays have it. Undefined without relays.
   */
  readonly relayAdmits: RelayAdmits | undefined
  /** Direct-path upgrades of relayed connections (config `traversal`); undefined when off. */
  readonly directPaths: DirectPaths | undefined
  /** Port mappings asked of the router (config `traversal.portMapping`); undefined when off. */
  get portMapping(): PortMappingPart | undefined {
    return this.#portMap.enabled ? this.#portMap : undefined
  }
  /** The port-mapping part, also when off (`warren reload` may turn it on). */
  readonly #portMap: PortMappingPart
  /** WebRTC paths from browsers (config `traversal.webrtc`): on or why not, and the STUN servers offered. */
  readonly webrtc: WebRtcState
  /** Nodes named in `peers`, in an `allow` list or in `relays`: they always get a connection slot. */
  readonly known: KnownPeers
  /** The connection budget of all other nodes (config `limits.maxStrangerConnections…`). */
  readonly strangers: StrangerGate
  /** The parts started by {@link WarrenNode.start}, stopped in reverse by {@link stop}. */
  #parts: StartedParts | undefined
  #config: Config
  readonly #log: NonNullable<WarrenNodeOptions['log']>
  readonly #started = Date.now()
  readonly #maxPeerConnections: number

  private constructor(libp2p: WarrenLibp2p, opts: WarrenNodeStartOptions, gates: Omit<NodeLibp2p, 'libp2p'>) {
    this.libp2p = libp2p
    this.known = gates.known
    this.strangers = gates.strangers
    this.#maxPeerConnections = gates.maxPeerConnections
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
    this.#host = new ServiceHost(libp2p, this.registry, {
      ...opts.config.limits,
      log: this.#log,
      counters: this.streamCounters,
    })
    logStreams(this.streamCounters, this.#log)
    this.#rpc = new NodeRpc(libp2p, this.registry, opts.config, { startedAt: this.#started, log: this.#log })
    this.rpc = this.#rpc.methods
    this.#outgoing = new OutgoingServices({
      connect: (node, o) => this.connect(node, o),
      counters: this.streamCounters,
      selfId: this.peerId.toString(),
      limits: () => this.#config.limits,
      log: this.#log,
    })
    this.#forwarder = new Forwarder(
      (socket, node, service, addrs) => this.pipeService(socket, node, service, addrs ? { addrs } : {}),
      (node, service, addrs) => this.checkService(node, service, addrs ? { addrs } : {}),
      this.#log,
      { allowOtherUsers: opts.config.proxy?.allowOtherUsers === true },
    )
    const settings = discoverySettings(opts.config)
    this.discovery = new Discovery(libp2p, { privateKey: opts.privateKey, settings, log: this.#log })
    this.#dialer = new Dialer(libp2p, this.addressBook, this.discovery, {
      dialTimeoutMs: opts.config.limits.dialTimeoutMs,
      log: this.#log,
    })
    if (opts.config.relays.length > 0) {
      this.homeRelay = new HomeRelay(libp2p, opts.config.relays, {
        log: this.#log,
        ...(opts.config.relayTokens === undefined ? {} : { tokens: opts.config.relayTokens }),
      })
      this.relayAdmits = new RelayAdmits(libp2p, this.registry, opts.config.relays, this.#log)
    }
    this.#portMap = new PortMappingPart(libp2p, gates.udxHub, opts.config, this.#log)
    if (gates.udxHub !== undefined) {
      this.directPaths = directPathsFor(libp2p, gates.udxHub, opts.config, {
        admission: (peer) => punchAdmission(peer, this.known, this.registry, libp2p),
        portMapped: () => this.portMapping?.addrs() ?? [],
        onSilentPath: (why) => {
          this.#relayLinks?.checkNow(why)
          this.portMapping?.refresh(why)
        },
        log: this.#log,
      })
    }
    this.webrtc = gates.webrtc
    const paths = this.directPaths
    if (paths !== undefined && this.webrtc.enabled) this.webrtc.iceServers = () => paths.stunServers().map(stunUrl)
  }

  /** Starts a node: libp2p up, config services registered, service protocol handled. */
  static async start(opts: WarrenNodeStartOptions): Promise<WarrenNode> {
    const { libp2p, ...made } = await createNodeLibp2p(opts)
    let node: WarrenNode
    try {
      node = new WarrenNode(libp2p, opts, made)
    } catch (err) {
      await libp2p.stop()
      made.webrtc.release()
      throw err
    }
    node.#parts = await startInOrder(node.#lifecycle(opts))
    return node
  }

  /** What this node starts, in this order; stopped in reverse, also when one fails to start (src/lifecycle.ts). */
  #lifecycle(opts: WarrenNodeStartOptions): Startable[] {
    const { homeRelay, directPaths, libp2p } = this
    const parts: Startable[] = [
      // started by createNode already; WebRTC's threads are freed once libp2p has closed its peer connections
      part({
        start: () => libp2p.start(),
        stop: async () => {
          await libp2p.stop()
          this.webrtc.release()
        },
      }),
      descriptorsPart(libp2p, this.#maxPeerConnections, opts.config.limits, this.#log),
      part({
        start: () => {
          for (const [name, svc] of Object.entries(opts.config.services)) this.registry.add(name, svc, 'config')
          this.#refreshKnown()
          this.known.attach(libp2p)
        },
      }),
      this.#host,
      this.#rpc,
      part({ stop: () => this.#forwarder.closeAll() }),
      part({
        start: async () => {
          this.#local = await LocalAccess.start({
            config: opts.config,
            node: this,
            addresses: this.addresses,
            addressBook: this.addressBook,
            accessListen: opts.accessListen ?? (opts.preset === 'test' ? '127.0.0.1:0' : undefined),
            dnsListen: opts.dnsListen,
            gatewayFastPath: opts.gatewayFastPath,
            pages: opts.pages,
            log: this.#log,
          })
        },
        stop: () => this.#local?.close(),
      }),
      relayWatchPart(libp2p, opts.config.relays, this.#log, (links) => {
        this.#relayLinks = links
      }),
      this.discovery,
    ]
    if (this.relayAdmits !== undefined) parts.push(this.relayAdmits)
    if (homeRelay !== undefined) parts.push(part({ start: () => homeRelay.start(), stop: () => homeRelay.stop() }))
    parts.push(this.#portMap) // off, it asks nothing; `warren reload` may turn it on
    if (directPaths !== undefined) parts.push(directPaths)
    return parts
  }

  identity(): NodeIdentity {
    return identityOf(this.libp2p, this.homeRelay, this.portMapping?.addrs())
  }

  status(): NodeStatus {
    return {
      ...this.identity(),
      version: VERSION,
      uptimeMs: Date.now() - this.#started,
      services: this.services(),
      peers: this.peers(),
      forwards: this.forwards(),
      streams: streamsOf(this.#host.stats(), this.streamCounters),
      traffic: this.streamCounters.snapshot(),
      ...this.#local?.status(),
      ...(this.homeRelay === undefined ? {} : { relay: this.homeRelay.status() }),
      discovery: this.discovery.status(),
      ...(this.portMapping === undefined ? {} : { portMapping: this.portMapping.status() }),
      webrtc: {
        enabled: this.webrtc.enabled,
        ...(this.webrtc.reason === undefined ? {} : { reason: this.webrtc.reason }),
        iceServers: this.webrtc.iceServers().flatMap((s) => s.urls),
      },
      openFiles: processDescriptors().status(),
    }
  }

  /** Known nodes from `peers`, `relays` and the allow lists of the services exposed now. */
  #refreshKnown(): void {
    const allowed = this.registry.list().map((s) => this.registry.get(s.name)?.allowed)
    this.known.set(knownIdsOf(this.#config, allowed))
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
    return peersOf(this.libp2p, this.addressBook, this.directPaths)
  }

  /** Addresses learned from tickets and --addr, for the daemon to persist. */
  learnedAddresses(): Record<string, string[]> {
    return this.addressBook.learned()
  }

  lookup(node: string, opts: { fresh?: boolean; all?: boolean } = {}): Promise<LookupResult> {
    const target = this.addressBook.resolve(node)
    return this.discovery.lookup(target.id, { configAddrs: target.addrs, ...opts })
  }

  /**
   * Resolves `node` (unless given as `addressBook.resolve` returned it) and connects, reusing an open connection
   * (direct preferred); src/node/dial/dialer.ts. `allowNewAddresses: false` refuses a ticket or address this node does
   * not already know (ERR_UNKNOWN_ADDRESSES) instead of dialing it.
   */
  connect(node: string | ResolvedNode, opts: ConnectOptions = {}): Promise<Connection> {
    return this.#dialer.connect(node, opts)
  }

  /** `opts.port`: the port a local client connected to, sent in the request header (transparent mode). */
  openService(
    node: string | ResolvedNode,
    service: string,
    opts: ConnectOptions & { port?: number } = {},
  ): Promise<Stream> {
    return this.#outgoing.open(node, service, opts)
  }

  /**
   * Pipes `local` through a service stream. The client's first bytes go out with the request, before the host's
   * answer (one round trip less per connection); the stream's bytes reach `local` only after an OK. A refusal
   * rejects with the same error as {@link openService}, and `local` is reset.
   */
  pipeService(local: Duplex, node: string, service: string, opts: { addrs?: string[] } = {}): Promise<PipeResult> {
    return this.#outgoing.pipe(local, node, service, opts)
  }

  /**
   * Opens one service stream and closes it again once the host answered OK (src/access/forward-check.ts), within
   * 2 × limits.dialTimeoutMs (a dial, and one more after a fresh lookup) + limits.connectTimeoutMs (the host's connect
   * to its target): 25 s with the defaults.
   */
  checkService(node: string, service: string, opts: { addrs?: string[] } = {}): Promise<void> {
    return this.#outgoing.check(node, service, opts)
  }

  addForward(spec: ForwardSpec, opts: AddOptions = {}): Promise<ForwardInfo> {
    this.addressBook.resolve(spec.node, spec.addrs) // fail early on a bad name
    return this.#forwarder.add(spec, opts)
  }

  removeForward(listen: string): Promise<void> {
    return this.#forwarder.remove(listen)
  }

  /**
   * Applies a new config.json (`warren reload`, SIGHUP): peers, the services it names with their allow lists, the
   * stream limits (src/node/reload.ts). Throws, changing nothing, when it cannot be applied.
   */
  reload(config: Config): ReloadResult {
    const applyRpc = this.#rpc.prepareReload(config)
    const result = applyConfig(
      { registry: this.registry, addressBook: this.addressBook, host: this.#host },
      this.#config,
      config,
    )
    applyRpc()
    if (result.portMapping) {
      void this.#portMap.reconfigure(config).catch((err: Error) => this.#log('error', `port mapping: ${err.message}`))
    }
    this.#config = config
    this.#refreshKnown()
    void this.#host.syncKubo().catch((err: Error) => this.#log('error', `kubo handlers: ${err.message}`))
    return result
  }

  forwards(): ForwardInfo[] {
    return this.#forwarder.list()
  }

  /** A connection replaced or pruned under the ping (the ping never reached the node) is dialled again, once. */
  ping(node: string, opts: { addrs?: string[] } = {}): Promise<PingResult> {
    return pingNode(() => this.connect(node, opts))
  }

  callNode(node: string, method: string, params?: unknown, opts: { addrs?: string[] } = {}): Promise<RemoteCallResult> {
    return this.#rpc.call(() => this.connect(node, opts), method, params)
  }

  /** UDP reachability and NAT behaviour as the relays' STUN responders see it (`warren netcheck`). */
  async netcheck(): Promise<NetcheckResult> {
    const report = await netcheckOf(this.directPaths, this.homeRelay)
    return this.portMapping === undefined ? report : { ...report, portMapping: this.portMapping.status() }
  }

  /** Stops every part, the last started first; rejects with their errors once all were asked to stop. */
  async stop(): Promise<void> {
    await this.#parts?.stop()
  }
}
