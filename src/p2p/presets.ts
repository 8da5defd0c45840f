/**
 * Presets for the libp2p assembly, in one place. A preset fixes transports, limits and timeouts for a role;
 * callers add the key, listen addresses and their own services.
 */

export type PresetName = 'default' | 'test' | 'relay'

export interface Preset {
  /**
   * Yamux window per stream: larger windows mean fewer window updates on fast links. At most 2 MiB: a relayed
   * connection is itself a stream whose read buffer libp2p caps at 4 MiB, and a full window of a slow reader plus
   * frame overhead must fit in it (4 MiB windows reset relayed streams under load, measured in the NAT lab).
   */
  maxStreamWindowSize: number
  /**
   * Streams open at once per connection and direction, for nodes that do not pass their own
   * (`NodeOptions.maxStreamsPerConnection`): the relay and the benchmarks' bare libp2p peers. A Warren node passes
   * the ceiling its `limits` imply (src/services/host.ts `streamsPerConnection`), so no fixed number caps it.
   */
  defaultStreamsPerConnection: number
  /**
   * Connections kept open at once; a Warren node adds `limits.maxStrangerConnections` to it, so that strangers'
   * connections (gated by src/node/stranger-gate.ts) never take these slots from known nodes and this node's dials.
   */
  maxConnections: number
  /** Per-address dial time-out, ms. */
  dialTimeoutMs: number
  /** Dial through relays (`/p2p-circuit` addresses) and keep reservations on them; off for a relay itself. */
  relayClient: boolean
  /**
   * Yamux's own keep-alive: a ping every 30 s per connection, on a repeating task (a timer, an abort controller and
   * their closures, ~0.7 KiB per connection). A node checks its connections with its own pings anyway
   * (src/p2p/conn-ping.ts); a relay checks each connection once a minute (src/relay/server/conn-sweep.ts), and its
   * clients ping it every 10 s, so it goes without.
   */
  muxerKeepAlive: boolean
  /** New inbound connections accepted per second from one host (libp2p's default is 5). */
  inboundConnectionThreshold?: number
  /** Inbound connections still in their handshake at once (libp2p's default is 10). */
  maxIncomingPendingConnections?: number
  /**
   * Of those, at most this many from one IP address (IPv6: one /64), and `pendingPerRelay` through one relay
   * (src/p2p/pending-gate.ts); loopback is not counted. Absent: no limit per source.
   */
  pendingPerIp?: number
  pendingPerRelay?: number
}

export const PRESETS: Record<PresetName, Preset> = {
  default: {
    maxStreamWindowSize: 2 * 1024 * 1024,
    defaultStreamsPerConnection: 4_096,
    maxConnections: 300,
    dialTimeoutMs: 10_000,
    relayClient: true,
    muxerKeepAlive: true,
    // libp2p rate-limits new inbound connections per remote IP (default 5/s); every relayed connection to a node
    // comes from its relay's IP, so the default would refuse the sixth peer reaching it through the relay in a second
    inboundConnectionThreshold: 100,
    maxIncomingPendingConnections: 64,
    // one host that opens connections and sends nothing must not hold all 64: it gets 8, a relay's circuits 32
    pendingPerIp: 8,
    pendingPerRelay: 32,
  },
  // like default, but quicker to give up, for tests that expect failures
  test: {
    maxStreamWindowSize: 2 * 1024 * 1024,
    defaultStreamsPerConnection: 4_096,
    maxConnections: 300,
    dialTimeoutMs: 3_000,
    relayClient: true,
    muxerKeepAlive: true,
    // every node of an in-process testnet connects from 127.0.0.1, directly or through a loopback relay
    inboundConnectionThreshold: 1_000,
  },
  // a circuit relay v2 server (`warren relay`): many peers, each with a connection, reservations and circuits
  relay: {
    maxStreamWindowSize: 2 * 1024 * 1024,
    defaultStreamsPerConnection: 4_096,
    maxConnections: 4_096,
    dialTimeoutMs: 10_000,
    relayClient: false,
    muxerKeepAlive: false,
    inboundConnectionThreshold: 200,
    maxIncomingPendingConnections: 256,
    // 16 of the 256 per host: clients behind one carrier-grade NAT still connect in bursts
    pendingPerIp: 16,
    pendingPerRelay: 16,
  },
}
