/**
 * Presets for the libp2p assembly, in one place. A preset fixes transports, limits and timeouts for a role;
 * callers add the key, listen addresses and their own services.
 */

export type PresetName = 'default' | 'test'

export interface Preset {
  /** Yamux window per stream: larger windows mean fewer window updates on fast links. */
  maxStreamWindowSize: number
  /** Service streams open at once per connection, inbound and outbound. */
  maxServiceStreamsPerConnection: number
  /** Connections kept open at once. */
  maxConnections: number
  /** Per-address dial time-out, ms. */
  dialTimeoutMs: number
}

export const PRESETS: Record<PresetName, Preset> = {
  default: {
    maxStreamWindowSize: 4 * 1024 * 1024,
    maxServiceStreamsPerConnection: 4_096,
    maxConnections: 300,
    dialTimeoutMs: 10_000,
  },
  // like default, but quicker to give up, for tests that expect failures
  test: {
    maxStreamWindowSize: 4 * 1024 * 1024,
    maxServiceStreamsPerConnection: 4_096,
    maxConnections: 300,
    dialTimeoutMs: 3_000,
  },
}
