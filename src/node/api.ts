/**
 * The contract of a Warren node in one process ({@link WarrenNodeApi}) and its start options; the daemon's local API
 * methods are written against this interface, src/node/warren-node.ts implements it.
 *
 * @packageDocumentation
 */

import type { Duplex } from 'node:stream'
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { AddOptions, ForwardSpec } from '../access/forward.ts'
import type { LocalPages } from '../access/local-pages.ts'
import type { Config, ServiceConfig } from '../config/schema.ts'
import type { LookupResult } from '../discovery/resolver.ts'
import type { ResolvedNode } from '../identity/address-book.ts'
import type { Logger } from '../log.ts'
import type { PipeResult } from '../p2p/pipe.ts'
import type { PresetName } from '../p2p/presets.ts'
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

export interface WarrenNodeOptions {
  privateKey: PrivateKey
  config: Config
  /** Overrides config.listen (e.g. `--listen` on `warren up`, or `/ip4/127.0.0.1/tcp/0` in tests). */
  listen?: string[]
  preset?: PresetName
  /** Called for readable log lines; default: none. */
  log?: Logger
}

/** What a Warren node offers; implemented by `WarrenNode` (src/node/warren-node.ts). */
export interface WarrenNodeApi {
  readonly peerId: PeerId
  identity(): NodeIdentity
  status(): NodeStatus
  /** Exposes a service at runtime; throws ERR_SERVICE_EXISTS unless `replace`. */
  expose(name: string, service: ServiceConfig | string, opts?: { replace?: boolean }): ServiceInfo
  /** Throws ERR_SERVICE_NOT_FOUND. */
  unexpose(name: string): void
  services(): ServiceInfo[]
  peers(): PeerInfo[]
  /**
   * Resolves `node` (alias, base58/base36 id or ticket; `addrs` add addresses), connects and opens a
   * `/warren/service/1.0.0` stream; resolves once the host answered OK. A node given as `AddressBook.resolve`
   * returned it is used as it is (not resolved again; `addrs` ignored). Errors are WarrenErrors:
   * ERR_UNKNOWN_PEER, ERR_BAD_NODE_ID, ERR_BAD_TICKET, ERR_NO_ADDRESSES, ERR_LOOKUP_FAILED, ERR_DIAL_FAILED,
   * ERR_UNKNOWN_SERVICE, ERR_NOT_AUTHORIZED, ERR_TARGET_UNREACHABLE, ERR_OVERLOADED, ERR_PROTOCOL, ERR_TIMEOUT.
   * `port` (1-65535, else ERR_USAGE) travels in the request header as the port the client connected to.
   */
  openService(
    node: string | ResolvedNode,
    service: string,
    opts?: { addrs?: string[]; signal?: AbortSignal; port?: number },
  ): Promise<Stream>
  /**
   * Pipes an already-connected local duplex (a TCP socket, stdin/stdout pair) to a service until both sides end;
   * rejects when the stream cannot be opened, resolves with the bytes, duration and the error of an abnormal end.
   */
  pipeService(local: Duplex, node: string, service: string, opts?: { addrs?: string[] }): Promise<PipeResult>
  /** Opens one service stream and closes it at once: resolves on OK, rejects with the error a client would meet. */
  checkService(node: string, service: string, opts?: { addrs?: string[] }): Promise<void>
  /**
   * Local TCP listener whose connections go to `node`/`service`, after a service check unless `spec.check` is false.
   * Throws ERR_FORWARD_EXISTS, ERR_LISTEN_FAILED, and (unless `opts.waitForCheck` is false) ERR_UNKNOWN_SERVICE or
   * ERR_NOT_AUTHORIZED from the check; other check failures are in the result's `check`.
   */
  addForward(spec: ForwardSpec, opts?: AddOptions): Promise<ForwardInfo>
  removeForward(listen: string): Promise<void>
  forwards(): ForwardInfo[]
  ping(node: string, opts?: { addrs?: string[] }): Promise<PingResult>
  /**
   * Calls `method` of `node` over `/warren/rpc/1.0.0` (docs/rpc.md): its result, the round trip and the path. Errors
   * are those of a dial, and ERR_RPC_UNKNOWN_METHOD, ERR_RPC_REFUSED, ERR_RPC_BAD_PARAMS, ERR_RPC_TOO_LARGE,
   * ERR_RPC_FAILED, ERR_TIMEOUT, or the WarrenError the method threw.
   */
  callNode(node: string, method: string, params?: unknown, opts?: { addrs?: string[] }): Promise<RemoteCallResult>
  /** What the relays' STUN responders see of this node (`warren netcheck`); ERR_NO_DIRECT_PATH when traversal is off. */
  netcheck(): Promise<NetcheckResult>
  /** Where the addresses of `node` come from (cache, config, mDNS, DHT); throws ERR_LOOKUP_FAILED. */
  lookup(node: string, opts?: { fresh?: boolean; all?: boolean }): Promise<LookupResult>
  stop(): Promise<void>
}

export interface WarrenNodeStartOptions extends WarrenNodeOptions {
  /**
   * Skips building `main-event` events nobody listens to, for the whole process (src/p2p/patches/unheard-events.ts):
   * default off for library use; the `warren up` daemon turns it on.
   */
  skipUnheardEvents?: boolean
  /** Addresses learned earlier (from state.json), by node id. */
  learned?: Record<string, string[]>
  /**
   * Overrides proxy.listen for the access port (SOCKS5, HTTP proxy, gateway), e.g. `127.0.0.1:0` in tests;
   * `false` turns it off. Preset `test` defaults to `127.0.0.1:0`.
   */
  accessListen?: string | false
  /** Overrides dns.listen and turns the DNS server on (e.g. `127.0.0.1:0` in tests). */
  dnsListen?: string
  /** Overrides traversal.udpListen (preset `test`: `/ip4/127.0.0.1/udp/0`). */
  udpListen?: string[]
  /** Overrides whether the access port uses the gateway fast path (default: on unless WARREN_GATEWAY_FAST_PATH=0). */
  gatewayFastPath?: boolean
  /** The node's own pages on the access port, `warren.localhost:<port>` (the daemon sets their handler). */
  pages?: LocalPages
}
