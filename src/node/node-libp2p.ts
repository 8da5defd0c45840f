/**
 * The libp2p node under a {@link WarrenNode} (src/node/warren-node.ts), started: its listen addresses (the UDP ones
 * too when traversal is on), the connection gate that keeps known nodes apart from strangers, the connection cap
 * (the preset's plus the strangers' budget) and the discovery services the config asks for.
 */
import { Discovery } from '../discovery/discovery.ts'
import { createNode, type WarrenLibp2p } from '../p2p/create.ts'
import { PRESETS } from '../p2p/presets.ts'
import { UdxHub } from '../p2p/udx/transport.ts'
import { type IceServer, loadWebRtc } from '../p2p/webrtc/load.ts'
import { streamsPerConnection } from '../services/host.ts'
import type { WarrenNodeStartOptions } from './api.ts'
import { KnownPeers, knownIdsOf } from './known-peers.ts'
import { StrangerGate } from './stranger-gate.ts'

export interface NodeLibp2p {
  libp2p: WarrenLibp2p
  /** Nodes named in `peers`, an allow list or `relays`. */
  known: KnownPeers
  /** The connection budget of all other nodes. */
  strangers: StrangerGate
  /** The UDP sockets of direct paths; undefined when traversal is off. */
  udxHub: UdxHub | undefined
  /** WebRTC for browsers: on, with the ICE servers it uses (set once the relays' STUN ports are known), or why not. */
  webrtc: WebRtcState
  /** The most peer connections libp2p holds at once, pending inbound ones included: a descriptor each. */
  maxPeerConnections: number
}

/** Whether browsers can open WebRTC paths to this node, and the STUN servers it offers them. */
export interface WebRtcState {
  enabled: boolean
  /** Why it is off: the config, or the native library failing to load here. */
  reason?: string
  /** The ICE servers used for each new WebRTC connection; replaced by the node once it knows its relays' STUN. */
  iceServers: () => IceServer[]
  /** Called once libp2p has stopped: frees the WebRTC library's threads when no other node uses them. */
  release(): void
}

/** A STUN endpoint as an ICE server (`stun:198.18.0.1:3478`, `stun:[2001:db8::1]:3478`). */
export function stunUrl(e: { host: string; port: number }): IceServer {
  return { urls: `stun:${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}` }
}

/** Creates and starts the libp2p node for `opts`; throws ERR_LISTEN_FAILED (src/p2p/create.ts). */
export async function createNodeLibp2p(opts: WarrenNodeStartOptions): Promise<NodeLibp2p> {
  const traversal = opts.config.traversal.enabled
  const udxHub = traversal ? new UdxHub() : undefined
  const udpListen =
    opts.udpListen ?? (opts.preset === 'test' ? ['/ip4/127.0.0.1/udp/0'] : opts.config.traversal.udpListen)
  const webrtc: WebRtcState = { enabled: false, iceServers: () => [], release: () => {} }
  let webrtcTransport: Awaited<ReturnType<typeof loadWebRtc>> | undefined
  if (!traversal || !opts.config.traversal.webrtc) {
    webrtc.reason = traversal ? 'off in config (traversal.webrtc)' : 'off in config (traversal.enabled)'
  } else {
    webrtcTransport = await loadWebRtc(() => webrtc.iceServers())
    if ('error' in webrtcTransport) webrtc.reason = `the WebRTC library does not load here: ${webrtcTransport.error}`
    else {
      webrtc.enabled = true
      webrtc.release = webrtcTransport.release
    }
  }
  const known = new KnownPeers(knownIdsOf(opts.config))
  const strangers = new StrangerGate(opts.config.limits, opts.log)
  strangers.setKnown((id) => known.has(id))
  const preset = PRESETS[opts.preset ?? 'default']
  const maxConnections = preset.maxConnections + opts.config.limits.maxStrangerConnections
  const maxPeerConnections = maxConnections + (preset.maxIncomingPendingConnections ?? 0)
  const libp2p = await createNode({
    privateKey: opts.privateKey,
    listen: [...(opts.listen ?? opts.config.listen), ...(traversal ? udpListen : [])],
    announce: opts.config.announce,
    preset: opts.preset ?? 'default',
    connectionGater: strangers.gater(),
    maxConnections,
    // the per-connection stream ceiling follows the limits: raising them raises it
    maxStreamsPerConnection: streamsPerConnection(opts.config.limits),
    ...(udxHub === undefined ? {} : { udxHub }),
    ...(webrtcTransport !== undefined && 'transport' in webrtcTransport ? { webrtc: webrtcTransport.transport } : {}),
    ...(opts.skipUnheardEvents === true ? { skipUnheardEvents: true } : {}),
    ...Discovery.nodeOptions(opts.config, opts.listen ?? opts.config.listen),
  }).catch((err: unknown) => {
    webrtc.release()
    throw err
  })
  return { libp2p, known, strangers, udxHub, webrtc, maxPeerConnections }
}
