/**
 * Discovery settings with every default filled in: `config.json` may leave `discovery` out or give only some keys;
 * this is the one place that says what "absent" means.
 */
import type { Config } from '../config/schema.ts'

import type { DhtMode } from '../p2p/dht.ts'

export type { DhtMode }

export interface DiscoverySettings {
  dht: boolean
  dhtMode: DhtMode
  mdns: boolean
  privateAddresses: boolean
  /** DHT servers to join through: config `relays` first, then `discovery.bootstrap`. */
  bootstrap: string[]
  lookupTimeoutMs: number
  cacheTtlMs: number
  republishMs: number
}

export const DISCOVERY_DEFAULTS = {
  dht: true,
  dhtMode: 'auto',
  mdns: true,
  privateAddresses: false,
  lookupTimeoutMs: 10_000,
  cacheTtlMs: 300_000,
  republishMs: 1_200_000,
} as const satisfies Omit<DiscoverySettings, 'bootstrap'>

export function discoverySettings(config: Pick<Config, 'discovery' | 'relays'>): DiscoverySettings {
  const d = config.discovery
  return {
    dht: d?.dht ?? DISCOVERY_DEFAULTS.dht,
    dhtMode: d?.dhtMode ?? DISCOVERY_DEFAULTS.dhtMode,
    mdns: d?.mdns ?? DISCOVERY_DEFAULTS.mdns,
    privateAddresses: d?.privateAddresses ?? DISCOVERY_DEFAULTS.privateAddresses,
    bootstrap: [...new Set([...config.relays, ...(d?.bootstrap ?? [])])],
    lookupTimeoutMs: d?.lookupTimeoutMs ?? DISCOVERY_DEFAULTS.lookupTimeoutMs,
    cacheTtlMs: d?.cacheTtlMs ?? DISCOVERY_DEFAULTS.cacheTtlMs,
    republishMs: d?.republishMs ?? DISCOVERY_DEFAULTS.republishMs,
  }
}
