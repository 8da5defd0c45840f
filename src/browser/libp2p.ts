/**
 * The browser's libp2p assembly: WebSockets (to relays) and circuit relay v2 (through them), WebRTC with Warren's
 * tunnel (direct paths, signalled through a relay), Noise, Yamux with Warren's stream settings and honest stream
 * ends, identify and ping. No TCP, no UDX, no DHT: a browser reaches
 * everything through its relays. Dials to private addresses are allowed (a relay on loopback or a LAN).
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { honest } from '../p2p/patches/honest-streams.ts'
import { PRESETS } from '../p2p/presets.ts'
import type { IceServer } from '../p2p/webrtc/load.ts'
import { type WebRtcTunnels, webrtcTunnels } from '../p2p/webrtc/tunnel.ts'

export type BrowserLibp2p = Libp2p<{
  identify: ReturnType<ReturnType<typeof identify>>
  ping: ReturnType<ReturnType<typeof ping>>
  /** Present when WebRTC is on. */
  webrtcTunnels?: WebRtcTunnels
}>

export interface BrowserLibp2pOptions {
  privateKey: PrivateKey
  /** Relay circuit listen addresses (`<relay ws address>/p2p/<id>/p2p-circuit`): reservations kept on each. */
  listen: string[]
  dialTimeoutMs?: number
  /** WebRTC direct paths, with the ICE servers for each new connection; absent: relays only. */
  webrtc?: { iceServers: () => IceServer[] }
}

/** Creates a libp2p node for a page or worker; not started. */
export async function createBrowserLibp2p(opts: BrowserLibp2pOptions): Promise<BrowserLibp2p> {
  const preset = PRESETS.default
  return createLibp2p({
    start: false,
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [
      webSockets(),
      circuitRelayTransport(),
      ...(opts.webrtc === undefined
        ? []
        : [webRTC({ rtcConfiguration: () => ({ iceServers: opts.webrtc!.iceServers() }) })]),
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [
      honest(
        yamux({
          maxMessageSize: 65_519 - 12,
          streamOptions: { maxStreamWindowSize: preset.maxStreamWindowSize },
        }),
      ),
    ],
    // the default browser gater refuses private addresses; a browser's relay may be on loopback or a LAN
    connectionGater: { denyDialMultiaddr: async () => false },
    connectionManager: { dialTimeout: opts.dialTimeoutMs ?? preset.dialTimeoutMs },
    services: {
      identify: identify(),
      ping: ping({ maxInboundStreams: 8, maxOutboundStreams: 8 }),
      ...(opts.webrtc === undefined ? {} : { webrtcTunnels: webrtcTunnels() }),
    },
  })
}
