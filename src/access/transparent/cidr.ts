/**
 * IP prefixes (`100.64.0.0/10`, `fd77:6172:7265:6e00::/64`) as numbers: parsing, containment and overlap, for the
 * ranges transparent mode captures and the routes it must not collide with.
 *
 * @example
 * ```ts
 * const r = parseCidr('100.64.0.0/10')
 * overlaps(r, parseCidr('100.100.0.0/16'))   // true
 * formatCidr(r)                               // '100.64.0.0/10'
 * ```
 */
import { isIPv4, isIPv6 } from 'node:net'
import { normalizeIPv6 } from '../service-addresses.ts'

export interface Cidr {
  family: 4 | 6
  /** The network address (host bits cleared). */
  base: bigint
  prefixLength: number
}

const BITS = { 4: 32, 6: 128 } as const

/** The address as a number; throws a plain Error for something that is not an IP address. */
export function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } {
  if (isIPv4(ip)) {
    const v = ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)
    return { family: 4, value: v }
  }
  const norm = normalizeIPv6(ip)
  if (norm === undefined) throw new Error(`"${ip}" is not an IP address`)
  const [head, tail] = norm.split('::') as [string, string | undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n) }
}

/** The textual address of a number. */
export function bigIntToIp(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 255n)).join('.')
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt((7 - i) * 16)) & 0xffffn).toString(16))
  return normalizeIPv6(groups.join(':'))!
}

/** Parses `address/length` (a bare address is a host prefix); throws a plain Error saying what is wrong. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/')
  const addr = slash < 0 ? text : text.slice(0, slash)
  if (!isIPv4(addr) && !isIPv6(addr)) throw new Error(`"${text}" is not an IP prefix (address/length)`)
  const { family, value } = ipToBigInt(addr)
  const bits = BITS[family]
  const lenText = slash < 0 ? String(bits) : text.slice(slash + 1)
  const prefixLength = /^\d{1,3}$/.test(lenText) ? Number(lenText) : Number.NaN
  if (!(prefixLength >= 0 && prefixLength <= bits)) throw new Error(`"${text}" has no valid prefix length (0-${bits})`)
  const hostBits = BigInt(bits - prefixLength)
  return { family, base: (value >> hostBits) << hostBits, prefixLength }
}

export function formatCidr(c: Cidr): string {
  return `${bigIntToIp(c.family, c.base)}/${c.prefixLength}`
}

/** Number of addresses in the prefix. */
export function sizeOf(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.family] - c.prefixLength)
}

/** True when the two prefixes share at least one address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false
  const shorter = Math.min(a.prefixLength, b.prefixLength)
  const shift = BigInt(BITS[a.family] - shorter)
  return a.base >> shift === b.base >> shift
}

/** True when `ip` lies in the prefix. */
export function contains(c: Cidr, ip: string): boolean {
  const { family, value } = ipToBigInt(ip)
  return family === c.family && overlaps(c, { family, base: value, prefixLength: BITS[family] })
}
