/**
 * The access port's settings with every default filled in. `config.json` may leave `proxy`, `gateway` and `dns`
 * out entirely (or give only some keys); this is the one place that says what "absent" means.
 */

import { isPublicListen } from '../config/listen-address.ts'
import type { Config } from '../config/schema.ts'
import { WarrenError } from '../errors.ts'
import { DEFAULT_TLD } from './names.ts'
import { DEFAULT_MAX_NAMES } from './service-addresses.ts'

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
  /** `proxy.allowOtherUsers`: serve local users other than the daemon's own (Linux checks it). */
  allowOtherUsers: boolean
  /** Client connections open at once, in all and from one local user (or one address). */
  maxConnections: number
  maxConnectionsPerClient: number
  /** `proxy.hosts`: more host names the access port answers to as a web server (and their subdomains). */
  hosts: string[]
  /**
   * Carry plain gateway and proxy requests on the fast path (src/gateway/fast/); `false` leaves every request
   * to the full path. Off when `WARREN_GATEWAY_FAST_PATH=0` is in the environment, or per node with the start
   * option `gatewayFastPath`. The fast path is never used with `proxy.auth`.
   */
  fastPath: boolean
}

export interface DnsSettings {
  enabled: boolean
  listen: string
  ttl: number
  tld: string
  /** `dns.public`: listening on a non-loopback address was asked for explicitly. */
  public: boolean
  /** `dns.maxNames`: names given addresses at most. */
  maxNames: number
  /** `proxy.allowOtherUsers`, for DNS over TCP. */
  allowOtherUsers: boolean
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
    allowOtherUsers: p?.allowOtherUsers ?? false,
    maxConnections: p?.maxConnections ?? 1024,
    maxConnectionsPerClient: p?.maxConnectionsPerClient ?? 256,
    hosts: p?.hosts ?? [],
    fastPath: process.env.WARREN_GATEWAY_FAST_PATH !== '0',
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
    public: config.dns?.public ?? false,
    maxNames: config.dns?.maxNames ?? DEFAULT_MAX_NAMES,
    allowOtherUsers: config.proxy?.allowOtherUsers ?? false,
  }
}

/**
 * A local entry point (a forward, the DNS server) on a non-loopback address serves every machine that can reach it,
 * as this node: that must be asked for explicitly. Throws ERR_USAGE when `listen` is not loopback and `isPublic` is
 * not set (`remedy` says how to set it); returns the warning to log when it is (ending with `exposure`, what other
 * machines can then do), undefined for a loopback address.
 */
export function checkPublicListen(
  what: string,
  listen: string,
  isPublic: boolean | undefined,
  remedy: string,
  exposure = 'anyone who can reach it uses it as this node',
): string | undefined {
  if (!isPublicListen(listen)) return undefined
  if (isPublic !== true) {
    throw new WarrenError(
      'ERR_USAGE',
      `${what} would listen on ${listen}, which is not a loopback address: other machines could use it`,
      { hint: `${remedy}, or listen on 127.0.0.1.` },
    )
  }
  return `${what} listens on ${listen}, a non-loopback address: ${exposure}`
}
