/**
 * The access port's settings with every default filled in. `config.json` may leave `proxy`, `gateway` and `dns`
 * out entirely (or give only some keys); this is the one place that says what "absent" means.
 */
import type { Config } from '../config/schema.ts'
import { DEFAULT_TLD } from './names.ts'

export interface AccessSettings {
  enabled: boolean
  listen: string
  auth?: { username: string; password: string }
  tld: string
  maxHeaderBytes: number
  headersTimeoutMs: number
  maxStreamsPerPeer: number
  gateway: { enabled: boolean; responseTimeoutMs: number }
  /** Time to open a service stream (dial + the host's connect to its target), ms. */
  openTimeoutMs: number
}

export interface DnsSettings {
  enabled: boolean
  listen: string
  ttl: number
  tld: string
}

export const DEFAULT_ACCESS_LISTEN = '127.0.0.1:4780'
export const DEFAULT_DNS_LISTEN = '127.0.0.1:5380'

export function accessSettings(config: Config): AccessSettings {
  const p = config.proxy
  const out: AccessSettings = {
    enabled: p?.enabled ?? true,
    listen: p?.listen ?? DEFAULT_ACCESS_LISTEN,
    tld: p?.tld ?? DEFAULT_TLD,
    maxHeaderBytes: p?.maxHeaderBytes ?? 16_384,
    headersTimeoutMs: p?.headersTimeoutMs ?? 30_000,
    maxStreamsPerPeer: p?.maxStreamsPerPeer ?? 256,
    gateway: {
      enabled: config.gateway?.enabled ?? true,
      responseTimeoutMs: config.gateway?.responseTimeoutMs ?? 60_000,
    },
    openTimeoutMs: config.limits.dialTimeoutMs + config.limits.connectTimeoutMs + 10_000,
  }
  if (p?.auth !== undefined) out.auth = p.auth
  return out
}

export function dnsSettings(config: Config): DnsSettings {
  return {
    enabled: config.dns?.enabled ?? false,
    listen: config.dns?.listen ?? DEFAULT_DNS_LISTEN,
    ttl: config.dns?.ttl ?? 60,
    tld: config.proxy?.tld ?? DEFAULT_TLD,
  }
}
