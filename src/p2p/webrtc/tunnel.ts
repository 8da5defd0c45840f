/**
 * The WebRTC tunnel: a Noise + Yamux connection carried by one data channel of a WebRTC connection.
 *
 * js-libp2p's WebRTC connections multiplex with one data channel per stream, and those streams have no read
 * back-pressure: a reader slower than the network makes its stream buffer without bound until libp2p resets it
 * (4 MiB; UPSTREAM.md). So Warren opens one stream of {@link TUNNEL_PROTOCOL} on the WebRTC connection and upgrades it
 * like a socket, with Noise (the other node's key, end to end) and Yamux (per-stream windows, Warren's stream
 * guarantees). Service streams, RPC and everything else then run on the tunnel's connection; the raw WebRTC
 * connection carries only the tunnel. The Yamux session reads its data channel as fast as it arrives, so that data
 * channel never backs up: what a slow reader holds back stays within its stream's window.
 *
 * @example
 * ```ts
 * const raw = await libp2p.dial(multiaddr(`${relayAddr}/p2p-circuit/webrtc/p2p/${peer}`), { force: true })
 * const conn = await libp2p.services.webrtcTunnels.open(raw) // an unlimited Noise + Yamux connection
 * ```
 */
import type { AbortOptions, ComponentLogger, Connection, Startable, Stream, Upgrader } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { StreamConnection } from './stream-conn.ts'

/** Time for the tunnel's Noise handshake and Yamux negotiation, ms. */
const UPGRADE_MS = 15_000

export const TUNNEL_PROTOCOL = '/warren/webrtc-tunnel/1.0.0'
/** js-libp2p's WebRTC signalling protocol (private-to-private, over a relayed connection). */
export const SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'

/** A raw WebRTC connection (one data channel per stream, no read back-pressure): carries only the tunnel. */
export function isRawWebRtc(conn: Connection): boolean {
  return conn.multiplexer === '/webrtc'
}

/** A tunnel's connection: Noise and Yamux over a WebRTC data channel. */
export function isWebRtcTunnel(conn: Connection): boolean {
  return !isRawWebRtc(conn) && conn.remoteAddr.getComponents().some((c) => c.name === 'webrtc')
}

interface TunnelComponents {
  registrar: {
    handle(
      protocol: string,
      handler: (stream: Stream, conn: Connection) => void,
      opts?: { runOnLimitedConnection?: boolean; maxInboundStreams?: number },
    ): Promise<void>
    unhandle(protocol: string): Promise<void>
  }
  upgrader: Upgrader
  logger: ComponentLogger
}

export class WebRtcTunnels implements Startable {
  readonly #components: TunnelComponents
  readonly #log: ReturnType<ComponentLogger['forComponent']>

  constructor(components: TunnelComponents) {
    this.#components = components
    this.#log = components.logger.forComponent('warren:webrtc-tunnel')
  }

  readonly [Symbol.toStringTag] = 'warren/webrtc-tunnels'

  async start(): Promise<void> {
    await this.#components.registrar.handle(TUNNEL_PROTOCOL, (stream, conn) => this.#accept(stream, conn), {
      runOnLimitedConnection: false,
      maxInboundStreams: 2,
    })
  }

  async stop(): Promise<void> {
    await this.#components.registrar.unhandle(TUNNEL_PROTOCOL)
  }

  /** Opens the tunnel on the raw WebRTC connection `raw`; resolves with the tunnel's connection. */
  async open(raw: Connection, opts: AbortOptions = {}): Promise<Connection> {
    if (!isRawWebRtc(raw)) throw new Error(`${raw.remoteAddr} is not a WebRTC connection`)
    const stream = await raw.newStream(TUNNEL_PROTOCOL, opts)
    const conn = new StreamConnection(stream, tunnelAddr(raw))
    try {
      return await this.#components.upgrader.upgradeOutbound(conn, {
        signal: opts.signal ?? AbortSignal.timeout(UPGRADE_MS),
      })
    } catch (err) {
      conn.abort(err as Error)
      throw err
    }
  }

  #accept(stream: Stream, raw: Connection): void {
    if (!isRawWebRtc(raw)) {
      stream.abort(new Error('the WebRTC tunnel runs over a WebRTC connection only'))
      return
    }
    const conn = new StreamConnection(stream, tunnelAddr(raw))
    this.#components.upgrader.upgradeInbound(conn, { signal: AbortSignal.timeout(UPGRADE_MS) }).catch((err: Error) => {
      this.#log.error('tunnel from %p not upgraded - %e', raw.remotePeer, err)
      conn.abort(err)
    })
  }
}

/**
 * The tunnel's remote address: `/webrtc/p2p/<peer>`. Not the raw connection's own address, which on the dialling
 * side names the relay that carried the signalling (`…/p2p-circuit/webrtc/…`) although no byte of the tunnel takes it.
 */
function tunnelAddr(raw: Connection): ReturnType<typeof multiaddr> {
  return multiaddr(`/webrtc/p2p/${raw.remotePeer}`)
}

/** The libp2p service: `services: { webrtcTunnels: webrtcTunnels() }`. */
export function webrtcTunnels(): (components: TunnelComponents) => WebRtcTunnels {
  return (components) => new WebRtcTunnels(components)
}
