/**
 * Transparent mode's settings with every default filled in (`transparent` in config.json may be absent or partial).
 * `warren up --transparent` sets `WARREN_TRANSPARENT=1` for the daemon it runs, which turns the mode on like
 * `"enabled": true`.
 */
import type { Config } from '../../config/schema.ts'
import { WarrenError } from '../../errors.ts'
import { DEFAULT_TLD } from '../names.ts'
import { type DerivationRanges, IPV4_RANGE, IPV6_PREFIX } from '../service-addresses.ts'
import { type Cidr, parseCidr } from './cidr.ts'

export const TRANSPARENT_ENV = 'WARREN_TRANSPARENT'
export const DEFAULT_INTERFACE = 'warren0'

export interface TransparentSettings {
  enabled: boolean
  ipv4Range: Cidr
  ipv6Range: Cidr
  /** The interface Warren adds and owns. */
  interface: string
  /** Register the DNS server with systemd-resolved when it runs. */
  resolved: boolean
  tld: string
  /**
   * Local users whose connections are captured: the daemon's own uid and, under sudo, `SUDO_UID`; `'all'` with
   * `proxy.allowOtherUsers`. Other users' connections to the ranges are refused.
   */
  users: number[] | 'all'
}

export function transparentSettings(config: Config, env: NodeJS.ProcessEnv = process.env): TransparentSettings {
  const t = config.transparent
  const range = (key: 'ipv4Range' | 'ipv6Range', text: string): Cidr => {
    try {
      return parseCidr(text)
    } catch (err) {
      throw new WarrenError('ERR_TRANSPARENT_RANGE', `transparent.${key}: ${(err as Error).message}`, {
        hint: `Set transparent.${key} in config.json to a prefix such as ${key === 'ipv4Range' ? IPV4_RANGE : IPV6_PREFIX}.`,
      })
    }
  }
  return {
    enabled: (t?.enabled ?? false) || env[TRANSPARENT_ENV] === '1',
    ipv4Range: range('ipv4Range', t?.ipv4Range ?? IPV4_RANGE),
    ipv6Range: range('ipv6Range', t?.ipv6Range ?? IPV6_PREFIX),
    interface: t?.interface ?? DEFAULT_INTERFACE,
    resolved: t?.resolved ?? true,
    tld: config.proxy?.tld ?? DEFAULT_TLD,
    users: config.proxy?.allowOtherUsers === true ? 'all' : capturedUsers(env),
  }
}

/** The daemon's uid, and the user who ran it through sudo. */
function capturedUsers(env: NodeJS.ProcessEnv): number[] {
  const uids = [process.getuid?.() ?? 0]
  const sudo = env.SUDO_UID
  if (sudo !== undefined && /^\d+$/.test(sudo) && !uids.includes(Number(sudo))) uids.push(Number(sudo))
  return uids
}

/** The address table's derivation ranges for the settings' prefixes. */
export function derivationRanges(s: Pick<TransparentSettings, 'ipv4Range' | 'ipv6Range'>): DerivationRanges {
  const v6 = s.ipv6Range.base >> 64n
  return {
    v4Base: Number(s.ipv4Range.base),
    v4Size: 2 ** (32 - s.ipv4Range.prefixLength),
    v6Prefix: Array.from({ length: 8 }, (_, i) => Number((v6 >> BigInt((7 - i) * 8)) & 255n)),
  }
}
