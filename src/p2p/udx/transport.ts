/**
 * A libp2p transport over udx-native: `/ip4/<host>/udp/<port>` addresses, one UDP socket per listener shared with STUN and
 * hole punching (see {@link UdxHub}), Noise and Yamux applied by libp2p's upgrader on top of each UDX stream.
 *
 * Dialing a NATed peer only works after both sides punched their NATs on the same sockets; the direct-path upgrade does
 * that over a relayed connection and then dials here.
 *
 * @example
 * ```ts
 * const hub = new UdxHub()
 * const node = await createLibp2p({
 *   addresses: { listen: ['/ip4/0.0.0.0/udp/0'] },
 *   transports: [tcp(), udx({ hub })],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 * })
 * const { mapped } = await stunBinding(hub.primary()!.packets, relayStun)
 * ```
 *
 * @packageDocumentation
 */
import {
  type ComponentLogger,
  type Connection,
  type CreateListenerOptions,
  type DialTransportOptions,
  type Listener,
  type ListenerEvents,
  serviceCapabilities,
  type Transport,
  TypedEventEmitter,
  transportSymbol,
  type Upgrader,
} from '@libp2p/interface'
import { getThinWaistAddresses, ipPortToMultiaddr } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { UDXStream } from 'udx-native'
import { WarrenError } from '../../errors.ts'
import { UdxMultiaddrConnection } from './conn.ts'
import { UdxEndpoint } from './endpoint.ts'
import type { Endpoint } from './packet-socket.ts'

/**
 * Kernel buffer asked for on each UDX socket, both directions (Linux caps it at net.core.rmem_max / wmem_max and
 * doubles it). udx acknowledges from the event loop, not the kernel: while the process is busy (a GC pause, another
 * process on the core) the peer keeps sending its window, and the default ~208 KiB buffer overflowed into drops and
 * retransmissions (raw UDX on loopback: 10 % of packets retransmitted with the default, none with 4 MiB).
 */
export const UDX_SOCKET_BUFFER = 4 * 1024 * 1024

/**
 * Inbound UDX streams in their libp2p upgrade at once, per listener; further ones are dropped. UDX's OPEN is one
 * datagram with no proof that its sender owns its source address, and each takes one of the node's 64 handshake
 * slots for up to 10 s: a flood of OPENs from forged addresses (which the per-address share of src/p2p/pending-gate.ts
 * cannot tell apart) could otherwise fill them all and keep TCP connections out too. At the cap new direct paths over
 * UDX wait for the flood's handshakes to time out; TCP, and the relayed path, are not held up.
 */
export const UDX_HANDSHAKES = 16

/** A UDX endpoint with the socket buffers {@link UDX_SOCKET_BUFFER} asks for. */
function tunedEndpoint(options?: ConstructorParameters<typeof UdxEndpoint>[0]): UdxEndpoint {
  const ep = new UdxEndpoint(options)
  try {
    ep.socket.setRecvBufferSize(UDX_SOCKET_BUFFER)
    ep.socket.setSendBufferSize(UDX_SOCKET_BUFFER)
  } catch {
    // a platform that refuses the size keeps its default: slower under load, still correct
  }
  return ep
}

/** Where the direct-path code finds the sockets the transport listens on. */
export class UdxHub {
  readonly endpoints = new Set<UdxEndpoint>()
  /** Set by the listener: upgrades an inbound stream on any endpoint of this hub. */
  inbound: ((stream: UDXStream, from: Endpoint) => void) | undefined
  /** Set by the listener: libp2p's upgrader, which also upgrades punched TCP sockets (tcp-punch.ts). */
  upgrader: Upgrader | undefined
  readonly #extra = new Set<UdxEndpoint>()

  /** The first listening endpoint: the socket to run STUN and punching on. */
  primary(): UdxEndpoint | undefined {
    return this.endpoints.values().next().value
  }

  /**
   * Extra sockets whose inbound streams the listener upgrades too: the hard side of a birthday punch opens many and
   * keeps the one that got through (close the others with {@link release}).
   */
  extraEndpoint(): UdxEndpoint {
    const ep = tunedEndpoint({ onInbound: (stream, from) => this.inbound?.(stream, from) })
    this.#extra.add(ep)
    return ep
  }

  /** Every endpoint: the listeners' and the extra ones still open. */
  all(): UdxEndpoint[] {
    return [...this.endpoints, ...this.#extra]
  }

  async release(ep: UdxEndpoint): Promise<void> {
    this.#extra.delete(ep)
    await ep.close()
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#extra].map((ep) => this.release(ep)))
  }
}

export interface UdxTransportInit {
  /** Share the listening sockets with the direct-path code. */
  hub?: UdxHub
  /** Give up opening a stream after this long (default 5000 ms). */
  openTimeoutMs?: number
}

export interface UdxComponents {
  logger: ComponentLogger
}

/** `/ip4|ip6/<host>/udp/<port>` (optionally `/p2p/<id>`) → host and port, or undefined for any other shape. */
export function udpEndpointOf(ma: Multiaddr): Endpoint | undefined {
  const parts = ma.getComponents()
  const [ip, udp, ...rest] = parts
  if (ip === undefined || udp === undefined || (ip.name !== 'ip4' && ip.name !== 'ip6') || udp.name !== 'udp') {
    return undefined
  }
  if (rest.length > 1 || (rest.length === 1 && rest[0]!.name !== 'p2p')) return undefined
  return { host: ip.value ?? '', port: Number(udp.value) }
}

class UdxListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  readonly #hub: UdxHub
  readonly #upgrader: Upgrader
  readonly #log: ReturnType<ComponentLogger['forComponent']>
  readonly #shutdown = new AbortController()
  #endpoint: UdxEndpoint | undefined
  /** Inbound streams in their libp2p upgrade now. */
  #handshaking = 0
  #refused = 0

  constructor(hub: UdxHub, upgrader: Upgrader, log: ReturnType<ComponentLogger['forComponent']>) {
    super()
    this.#hub = hub
    this.#upgrader = upgrader
    this.#log = log
  }

  async listen(ma: Multiaddr): Promise<void> {
    const at = udpEndpointOf(ma)
    if (at === undefined) {
      throw new WarrenError('ERR_BAD_ADDRESS', `the udx transport cannot listen on ${ma.toString()}`, {
        hint: 'Use a listen address of the form /ip4/0.0.0.0/udp/<port>.',
      })
    }
    const endpoint = tunedEndpoint({ host: at.host, port: at.port })
    const onInbound = (stream: UDXStream, from: Endpoint): void => {
      // an OPEN costs its sender one datagram from any source address it likes: past the cap its stream is dropped
      // before it takes one of libp2p's handshake slots
      if (this.#handshaking >= UDX_HANDSHAKES) {
        this.#refused++
        stream.destroy()
        return
      }
      this.#handshaking++
      const maConn = new UdxMultiaddrConnection({
        stream,
        remoteAddr: udpMultiaddr(from),
        direction: 'inbound',
        log: this.#log.newScope('connection'),
      })
      this.#upgrader
        .upgradeInbound(maConn, { signal: this.#shutdown.signal })
        .catch((err: unknown) => {
          this.#log.error('inbound udx upgrade failed - %e', err)
          maConn.abort(err as Error)
        })
        .finally(() => this.#handshaking--)
    }
    endpoint.onInbound = onInbound
    this.#hub.inbound = onInbound
    this.#hub.upgrader = this.#upgrader
    this.#endpoint = endpoint
    this.#hub.endpoints.add(endpoint)
    this.safeDispatchEvent('listening')
  }

  /** Inbound UDX streams in their handshake now, and those dropped at the cap since the start. */
  handshakes(): { pending: number; refused: number } {
    return { pending: this.#handshaking, refused: this.#refused }
  }

  getAddrs(): Multiaddr[] {
    if (this.#endpoint === undefined) return []
    const a = this.#endpoint.address()
    // a wildcard listener is announced as each interface's address, as the TCP transport does
    return getThinWaistAddresses(udpMultiaddr(a), a.port)
  }

  updateAnnounceAddrs(): void {}

  async close(): Promise<void> {
    this.#shutdown.abort()
    if (this.#endpoint !== undefined) {
      this.#hub.endpoints.delete(this.#endpoint)
      await this.#endpoint.close()
      this.#endpoint = undefined
    }
    this.safeDispatchEvent('close')
  }
}

/** `/ip4/<host>/udp/<port>` for an endpoint. */
export function udpMultiaddr(at: Endpoint): Multiaddr {
  // ipPortToMultiaddr gives /ip4/h/tcp/p; swap the transport part.
  const tcp = ipPortToMultiaddr(at.host, at.port)
  return tcp.decapsulate('/tcp').encapsulate(`/udp/${at.port}`)
}

export class UdxTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = '@warren/udx'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  readonly hub: UdxHub
  readonly #log: ReturnType<ComponentLogger['forComponent']>
  readonly #openTimeoutMs: number
  #ephemeral: UdxEndpoint | undefined

  constructor(components: UdxComponents, init: UdxTransportInit = {}) {
    this.hub = init.hub ?? new UdxHub()
    this.#log = components.logger.forComponent('warren:udx')
    this.#openTimeoutMs = init.openTimeoutMs ?? 5000
  }

  async dial(ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const to = udpEndpointOf(ma)
    if (to === undefined) {
      throw new WarrenError('ERR_BAD_ADDRESS', `the udx transport cannot dial ${ma.toString()}`, {
        hint: 'Dial an address of the form /ip4/<host>/udp/<port>/p2p/<node id>.',
      })
    }
    // Dial from the listening socket when there is one: its NAT mapping is the one the peer punched toward.
    let endpoint = this.hub.primary()
    if (endpoint === undefined) {
      this.#ephemeral ??= tunedEndpoint()
      endpoint = this.#ephemeral
    }
    const stream = await endpoint.open(to, { signal: options.signal, timeoutMs: this.#openTimeoutMs })
    const maConn = new UdxMultiaddrConnection({
      stream,
      remoteAddr: ma,
      direction: 'outbound',
      log: this.#log.newScope('connection'),
    })
    try {
      return await options.upgrader.upgradeOutbound(maConn, options)
    } catch (err) {
      maConn.abort(err as Error)
      throw err
    }
  }

  /** libp2p starts and stops transports that have both methods; only stop has work to do. */
  start(): void {}

  async stop(): Promise<void> {
    await this.hub.closeAll()
    await this.#ephemeral?.close()
    this.#ephemeral = undefined
  }

  createListener(options: CreateListenerOptions): Listener {
    return new UdxListener(this.hub, options.upgrader, this.#log)
  }

  listenFilter = (multiaddrs: Multiaddr[]): Multiaddr[] =>
    multiaddrs.filter((ma) => udpEndpointOf(ma) !== undefined && !ma.toString().includes('/p2p/'))

  dialFilter = (multiaddrs: Multiaddr[]): Multiaddr[] => multiaddrs.filter((ma) => udpEndpointOf(ma) !== undefined)
}

/** libp2p transport factory: `transports: [udx({ hub })]`. */
export function udx(init: UdxTransportInit = {}): (components: UdxComponents) => Transport {
  return (components) => new UdxTransport(components, init)
}
