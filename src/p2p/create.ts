/**
 * The libp2p assembly: TCP and WebSockets transports (plus circuit relay v2 for dialing and listening through relays),
 * Noise, Yamux, identify and ping; preset `relay` adds the circuit relay v2 server instead. Warren's DHT and mDNS
 * (src/discovery) are added when asked for.
 *
 * Warren's workarounds of libp2p behaviours (UPSTREAM.md) are installed on each connection and muxer as they are made;
 * one that finds libp2p's internals changed is reported once per process as a `WARREN_PATCH_MISSED` warning and in
 * `patchesMissed()` (src/p2p/patches/status.ts), and the node runs without it.
 *
 * @example
 * ```ts
 * const node = await createNode({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
 * console.log(node.getMultiaddrs())
 * ```
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import {
  type CircuitRelayServerInit,
  type CircuitRelayService,
  circuitRelayServer,
  circuitRelayTransport,
} from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PeerDiscovery, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { type WebSocketsInit, webSockets } from '@libp2p/websockets'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pInit } from 'libp2p'
import { WarrenError } from '../errors.ts'
import { connMonitor } from './conn-monitor.ts'
import { type WarrenDhtOptions, type WarrenKadDHT, warrenDht } from './dht.ts'
import { leanConnections } from './lean-connections.ts'
import { warrenMdns } from './mdns.ts'
import { batching, coalescing } from './patches/coalesce.ts'
import { linearConnectionList } from './patches/connection-list.ts'
import { sodiumEd25519 } from './patches/handshake-crypto.ts'
import { honest } from './patches/honest-streams.ts'
import { skipKnownProtocolMerges } from './patches/known-protocols.ts'
import { leanListeners } from './patches/lean-listeners.ts'
import { noiseCrypto } from './patches/noise-crypto.ts'
import { answering } from './patches/optimistic-handle.ts'
import { optimistic } from './patches/optimistic-select.ts'
import { sodiumPublicKey } from './patches/sodium.ts'
import { patchMissed } from './patches/status.ts'
import { skipUnheardEvents } from './patches/unheard-events.ts'
import { PendingGate } from './pending-gate.ts'
import { answerPings } from './ping-answer.ts'
import { PRESETS, type PresetName } from './presets.ts'
import { quietLogger } from './quiet-logger.ts'
import { RecordStore } from './record-store.ts'
import { type UdxHub, udpEndpointOf, udx } from './udx/transport.ts'
import type { TransportFactory } from './webrtc/load.ts'
import { type WebRtcTunnels, webrtcTunnels } from './webrtc/tunnel.ts'

export interface NodeOptions {
  privateKey: PrivateKey
  /** Multiaddrs to listen on; `[]` makes a dial-only node. */
  listen?: string[]
  /** Addresses to announce instead of the listen addresses. */
  announce?: string[]
  preset?: PresetName
  /** Addresses announced in addition to the listen addresses (a relay behind a TLS-terminating proxy). */
  appendAnnounce?: string[]
  /** WebSocket transport settings; `https` (cert and key) makes `/tls/ws` listeners work. */
  webSockets?: WebSocketsInit
  /** Runs a circuit relay v2 server (`services.relay`) with these settings. */
  relayServer?: CircuitRelayServerInit
  /** Decides on connections, reservations and circuits (a relay's policy). */
  connectionGater?: ConnectionGater
  /** Joins Warren's Kademlia DHT (`services.dht`); see src/p2p/dht.ts. */
  dht?: WarrenDhtOptions
  /** Where a DHT node keeps records (default with `dht`: a {@link RecordStore} with its default bound). */
  recordStore?: RecordStore
  /** Runs mDNS discovery on the LAN (`services.mdns`); see src/p2p/mdns.ts. */
  mdns?: boolean
  /**
   * Without Warren's per-message wrappers (write coalescing, Yamux batching, Noise with the key imported once): stock
   * js-libp2p transports, Noise and Yamux with Warren's settings, the baseline `npm run bench` compares against.
   */
  stock?: boolean
  /**
   * Installs {@link skipUnheardEvents}: `main-event` emitters skip building events nobody listens to,
   * {@link leanListeners}: listeners added without options go straight to Node's EventTarget, and
   * {@link sodiumEd25519}: `@libp2p/crypto`'s Ed25519 keys sign and check with libsodium. Each patches a
   * prototype shared by the whole process (every libp2p node and any other `main-event` user in it), so it is off
   * unless asked for; the `warren up` and `warren-relay` daemons turn it on. Ignored with `stock`.
   */
  skipUnheardEvents?: boolean
  /** Adds the UDX transport (direct paths through NATs); its sockets are shared with the punching code. */
  udxHub?: UdxHub
  /**
   * Adds js-libp2p's WebRTC transport (from src/p2p/webrtc/load.ts) and the WebRTC tunnel (`services.webrtcTunnels`):
   * browsers that reached this node through a relay open a direct path to it.
   */
  webrtc?: TransportFactory
  /**
   * libp2p's connection limit instead of the preset's: a Warren node adds its strangers' budget to the preset's
   * `maxConnections`, so that strangers can never take the slots of known nodes (src/node/stranger-gate.ts).
   */
  maxConnections?: number
  /**
   * Service streams open at once per connection and direction (default: the preset's
   * `defaultStreamsPerConnection`). Yamux allows {@link CONTROL_STREAMS} more, for identify, ping, RPC and the
   * DHT, and for service streams that are being refused, so that past the limit the service host answers with a
   * status instead of the muxer resetting the stream unexplained.
   */
  maxStreamsPerConnection?: number
  /**
   * What checks every 10 s that each connection is alive: Warren's monitor (src/p2p/conn-monitor.ts, Yamux PING
   * frames; the default), js-libp2p's (a ping stream each time; the default of stock nodes), or nothing here (a
   * relay, which sweeps its connections once a minute itself: src/relay/server/conn-sweep.ts).
   */
  monitor?: 'warren' | 'libp2p' | 'off'
  /**
   * Connection encrypters offered instead of Noise (bench/encrypters.ts measures `@libp2p/tls` this way). Warren's
   * Noise cipher (src/p2p/patches/noise-crypto.ts) applies to Noise only; the other patches stay.
   */
  connectionEncrypters?: NonNullable<Libp2pInit['connectionEncrypters']>
  /**
   * Transports added to Warren's (bench/encrypters.ts measures QUIC from `@chainsafe/libp2p-quic` this way: a QUIC
   * connection brings its own encryption and streams, so neither Noise nor Yamux runs on it).
   */
  transports?: TransportFactory[]
}

/** Ping streams per connection and direction (the answering side: src/p2p/ping-answer.ts). */
const PING_STREAMS = { maxInboundStreams: 8, maxOutboundStreams: 8 }

/** Streams per connection and direction that Yamux allows beyond `maxStreamsPerConnection`. */
export const CONTROL_STREAMS = 256

export type WarrenLibp2p = Libp2p<{
  identify: ReturnType<ReturnType<typeof identify>>
  ping: ReturnType<ReturnType<typeof ping>>
  /** Present only on nodes started with `relayServer`. */
  relay?: CircuitRelayService
  /** Present only on nodes started with `dht`. */
  dht?: WarrenKadDHT
  /** Present only on nodes started with `mdns`. */
  mdns?: PeerDiscovery
  /** Present only on nodes started with `webrtc`. */
  webrtcTunnels?: WebRtcTunnels
}>

/** Ed25519 by libsodium where sodium-native loads (its absence is not a missed patch: the stock path works). */
function fastSignatures(): void {
  const sodium = sodiumPublicKey()
  if (sodium !== undefined && !sodiumEd25519(sodium)) {
    patchMissed('sodiumEd25519', "@libp2p/crypto's Ed25519 key classes are not the ones expected")
  }
}

/** Creates and starts a libp2p node. Listen failures become ERR_LISTEN_FAILED. */
export async function createNode(opts: NodeOptions): Promise<WarrenLibp2p> {
  const preset = PRESETS[opts.preset ?? 'default']
  const monitor = opts.monitor ?? (opts.stock === true ? 'libp2p' : 'warren')
  const streams = opts.maxStreamsPerConnection ?? preset.defaultStreamsPerConnection
  const wrap = <T>(f: (x: T) => T): ((x: T) => T) => (opts.stock === true ? (x) => x : f)
  // events with no listener are not dispatched (src/p2p/patches/unheard-events.ts); process-wide, so only when asked
  if (opts.stock !== true && opts.skipUnheardEvents === true) skipUnheardEvents()
  // and listeners without options cost only what Node's EventTarget costs (src/p2p/patches/lean-listeners.ts)
  if (opts.stock !== true && opts.skipUnheardEvents === true) leanListeners()
  // and Ed25519 keys sign and check with libsodium (src/p2p/patches/handshake-crypto.ts)
  if (opts.stock !== true && opts.skipUnheardEvents === true) fastSignatures()
  try {
    const node = (await createLibp2p({
      // one silent logger for every stream unless DEBUG asks for libp2p's (src/p2p/quiet-logger.ts)
      ...(opts.stock === true ? {} : quietLogger()),
      privateKey: opts.privateKey,
      addresses: {
        listen: opts.listen ?? [],
        announce: opts.announce ?? [],
        appendAnnounce: opts.appendAnnounce ?? [],
        // the UDX socket is for punched direct paths only: announcing it would make ordinary dials race TCP over
        // UDX (slower per byte), and a NAT'd node's listening address is useless to others anyway
        ...(opts.udxHub === undefined
          ? {}
          : { announceFilter: (addrs: Multiaddr[]) => addrs.filter((a) => udpEndpointOf(a) === undefined) }),
      },
      transports: [
        // writes of one event-loop turn leave in one socket write (src/p2p/patches/coalesce.ts)
        wrap(coalescing)(tcp()),
        wrap(coalescing)(webSockets(opts.webSockets)),
        ...(preset.relayClient ? [circuitRelayTransport()] : []),
        ...(opts.udxHub === undefined ? [] : [udx({ hub: opts.udxHub })]),
        ...(opts.webrtc === undefined ? [] : [opts.webrtc]),
        ...(opts.transports ?? []),
      ],
      // OpenSSL with the session key imported once (src/p2p/patches/noise-crypto.ts)
      connectionEncrypters: opts.connectionEncrypters ?? [
        opts.stock === true ? noise() : noise({ crypto: noiseCrypto }),
      ],
      streamMuxers: [
        // streams asked for with OPTIMISTIC_SELECT send their protocol with their first bytes
        // (src/p2p/patches/optimistic-select.ts); streams that keep their pause and are reset when their connection
        // dies (src/p2p/patches/honest-streams.ts); the frames of one event-loop turn go out as one Noise message
        // (src/p2p/patches/coalesce.ts)
        // and incoming streams whose first bytes name their protocol are answered without multistream-select's
        // reader (src/p2p/patches/optimistic-handle.ts)
        wrap(answering)(
          wrap(optimistic)(
            wrap(honest)(
              wrap(batching)(
                yamux({
                  maxInboundStreams: streams + CONTROL_STREAMS,
                  maxOutboundStreams: streams + CONTROL_STREAMS,
                  // streams opened before the far side finished its upgrade are queued; past this many the whole
                  // connection is aborted (default 10), which a burst of forwarded connections easily exceeds
                  maxEarlyStreams: streams,
                  // one Yamux frame (12-byte header + data) per Noise message: Noise carries at most 65519 bytes of
                  // plaintext, so the default 64 KiB frames were split in two messages each (+15% CPU per byte)
                  maxMessageSize: 65_519 - 12,
                  enableKeepAlive: preset.muxerKeepAlive,
                  streamOptions: { maxStreamWindowSize: preset.maxStreamWindowSize },
                }),
              ),
            ),
          ),
        ),
      ],
      connectionManager: {
        maxConnections: opts.maxConnections ?? preset.maxConnections,
        dialTimeout: preset.dialTimeoutMs,
        ...(preset.inboundConnectionThreshold === undefined
          ? {}
          : { inboundConnectionThreshold: preset.inboundConnectionThreshold }),
        ...(preset.maxIncomingPendingConnections === undefined
          ? {}
          : { maxIncomingPendingConnections: preset.maxIncomingPendingConnections }),
      },
      // no one host may hold every handshake slot (src/p2p/pending-gate.ts)
      ...(preset.pendingPerIp === undefined || opts.stock === true
        ? opts.connectionGater === undefined
          ? {}
          : { connectionGater: opts.connectionGater }
        : {
            connectionGater: new PendingGate({
              perIp: preset.pendingPerIp,
              perRelay: preset.pendingPerRelay ?? preset.pendingPerIp,
            }).wrap(opts.connectionGater),
          }),
      ...(monitor === 'libp2p' ? {} : { connectionMonitor: { enabled: false } }),
      ...(opts.dht === undefined ? {} : { datastore: opts.recordStore ?? new RecordStore() }),
      services: {
        identify: identify(),
        // kad-dht checks its routing table with pings too: with libp2p's default of one outbound ping stream per
        // connection, a DHT ping to a relay made the home relay's health-check ping fail and the node drop its relay
        ping: ping(PING_STREAMS),
        ...(monitor === 'warren' ? { monitor: connMonitor() } : {}),
        ...(opts.relayServer === undefined ? {} : { relay: circuitRelayServer(opts.relayServer) }),
        ...(opts.dht === undefined ? {} : { dht: warrenDht(opts.dht) }),
        ...(opts.mdns === true ? { mdns: warrenMdns() } : {}),
        ...(opts.webrtc === undefined ? {} : { webrtcTunnels: webrtcTunnels() }),
      },
    })) as unknown as WarrenLibp2p
    // a stream of a protocol the peer's record already lists does not rewrite the record
    // (src/p2p/patches/known-protocols.ts)
    if (opts.stock !== true) {
      skipKnownProtocolMerges(node.peerStore)
      // answered ping streams are not held for 10 s each (src/p2p/ping-answer.ts)
      await answerPings(node, PING_STREAMS)
      // a connection's peer id holds no tree of concatenations and no slab of Node's buffer pool
      // (src/p2p/lean-connections.ts)
      leanConnections(node)
      // the list of all connections costs O(n), not O(n²) (src/p2p/patches/connection-list.ts)
      linearConnectionList(
        (node as unknown as { components: { connectionManager: unknown } }).components.connectionManager,
      )
    }
    return node
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(e.message)) {
      throw new WarrenError('ERR_LISTEN_FAILED', `cannot listen on ${(opts.listen ?? []).join(', ')}: address in use`, {
        hint: 'Another process (perhaps another Warren daemon) uses that port; change `listen` in config.json or pass --listen.',
        cause: err,
      })
    }
    throw new WarrenError('ERR_LISTEN_FAILED', `cannot start the node: ${e.message}`, { cause: err })
  }
}
