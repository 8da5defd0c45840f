/**
 * Direct paths from a browser: once a browser node reaches a node through a relay, it opens a WebRTC connection to
 * it with the relay carrying only the signalling (the offer, the answer and the ICE candidates, inside the relayed
 * connection's Noise), and then the WebRTC tunnel on it (src/p2p/webrtc/tunnel.ts: Noise with the node's key and
 * Yamux, over one data channel). New streams take the tunnel; streams already open on the relayed connection finish
 * there. A node that does not offer WebRTC (older, or `traversal.webrtc` off), or a path ICE cannot find, leaves the
 * relayed connection in use; the reason is kept for {@link WebRtcPaths.state}.
 *
 * STUN: the relays' own STUN responders (the port each announces on `/warren/relay/1.0.0`, on the host of its
 * WebSocket address), unless the page passes its own ICE servers.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { IceServer } from '../p2p/webrtc/load.ts'
import { isWebRtcTunnel, SIGNALING_PROTOCOL, TUNNEL_PROTOCOL } from '../p2p/webrtc/tunnel.ts'
import { queryRelayInfo } from '../relay/info.ts'
import type { BrowserLibp2p } from './libp2p.ts'

/** What the page sees of the path to a node. */
export interface PathState {
  /** `webrtc`: a direct WebRTC tunnel is open; `relay`: streams go through the relay; `upgrading`: being tried. */
  path: 'webrtc' | 'relay' | 'upgrading'
  /** Why the path is not WebRTC. */
  reason?: string
  /** Time from the start of the attempt to the open tunnel, ms. */
  ms?: number
}

export interface WebRtcPathOptions {
  /** ICE servers; absent: the relays' STUN responders. */
  iceServers?: IceServer[]
  /** Time for one attempt (signalling, ICE, tunnel handshake), ms (default 10 s). */
  timeoutMs?: number
}

const P2P = 421

export class WebRtcPaths {
  readonly #libp2p: BrowserLibp2p
  readonly #timeoutMs: number
  readonly #states = new Map<string, PathState>()
  readonly #attempts = new Map<string, Promise<PathState>>()
  #stun: IceServer[] = []

  constructor(libp2p: BrowserLibp2p, opts: WebRtcPathOptions) {
    this.#libp2p = libp2p
    this.#timeoutMs = opts.timeoutMs ?? 10_000
    if (opts.iceServers !== undefined) this.#stun = opts.iceServers
  }

  /** The ICE servers for a new WebRTC connection. */
  iceServers(): IceServer[] {
    return this.#stun
  }

  /** Learns the STUN ports of `relays` (relay id → WebSocket address), unless the page gave its own ICE servers. */
  async learnStun(relays: ReadonlyMap<string, Multiaddr>, given: boolean): Promise<void> {
    if (given) return
    const found: IceServer[] = []
    for (const [id, addr] of relays) {
      const host = addr.getComponents().find((c) => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(c.name))
      const relay = this.#libp2p.getConnections().find((c) => c.remotePeer.toString() === id)?.remotePeer
      if (host?.value === undefined || relay === undefined) continue
      const info = await queryRelayInfo(this.#libp2p as never, relay).catch(() => undefined)
      if (info?.stun == null) continue
      found.push({ urls: `stun:${host.name === 'ip6' ? `[${host.value}]` : host.value}:${info.stun.port}` })
    }
    this.#stun = found
  }

  /** The open tunnel to `peer`, if any. */
  tunnel(peer: PeerId): Connection | undefined {
    return this.#libp2p.getConnections(peer).find((c) => c.status === 'open' && isWebRtcTunnel(c))
  }

  state(peer: PeerId): PathState {
    if (this.tunnel(peer) !== undefined) return { ...this.#states.get(peer.toString()), path: 'webrtc' }
    return this.#states.get(peer.toString()) ?? { path: 'relay', reason: 'no WebRTC attempt yet' }
  }

  /**
   * Tries a WebRTC path to the node at the other end of `relayed` (once at a time per node); resolves with the
   * outcome. Never rejects.
   */
  upgrade(relayed: Connection): Promise<PathState> {
    const key = relayed.remotePeer.toString()
    const running = this.#attempts.get(key)
    if (running !== undefined) return running
    const attempt = this.#upgrade(relayed).then((s) => {
      this.#states.set(key, s)
      this.#attempts.delete(key)
      return s
    })
    this.#states.set(key, { path: 'upgrading' })
    this.#attempts.set(key, attempt)
    return attempt
  }

  async #upgrade(relayed: Connection): Promise<PathState> {
    const peer = relayed.remotePeer
    if (this.tunnel(peer) !== undefined) return { path: 'webrtc' }
    const started = performance.now()
    const protocols = await this.#protocolsOf(peer)
    if (!protocols.includes(SIGNALING_PROTOCOL) || !protocols.includes(TUNNEL_PROTOCOL)) {
      return { path: 'relay', reason: 'the node does not offer WebRTC (traversal.webrtc off, or an older Warren)' }
    }
    const circuit = relayed.remoteAddr.decapsulateCode(P2P)
    const signal = AbortSignal.timeout(this.#timeoutMs)
    let raw: Connection | undefined
    try {
      raw = await this.#libp2p.dial(multiaddr(`${circuit}/webrtc/p2p/${peer}`), { signal, force: true })
      const tunnels = this.#libp2p.services.webrtcTunnels
      if (tunnels === undefined) return { path: 'relay', reason: 'WebRTC is off in this browser node' }
      await tunnels.open(raw, { signal })
      return { path: 'webrtc', ms: Math.round(performance.now() - started) }
    } catch (err) {
      await raw?.close().catch(() => {})
      return { path: 'relay', reason: `no WebRTC path: ${(err as Error).message}` }
    }
  }

  /** The protocols `peer` announced in identify: at once when known, else after its identify (up to 5 s). */
  async #protocolsOf(peer: PeerId): Promise<string[]> {
    const known = await this.#libp2p.peerStore.get(peer).catch(() => undefined)
    if ((known?.protocols.length ?? 0) > 0) return known!.protocols
    return new Promise((resolve) => {
      const done = (protocols: string[]): void => {
        clearTimeout(timer)
        this.#libp2p.removeEventListener('peer:identify', onIdentify)
        resolve(protocols)
      }
      const onIdentify = (evt: CustomEvent<{ peerId: PeerId; protocols: string[] }>): void => {
        if (evt.detail.peerId.equals(peer)) done(evt.detail.protocols)
      }
      const timer = setTimeout(() => done([]), 5_000)
      this.#libp2p.addEventListener('peer:identify', onIdentify)
    })
  }
}
