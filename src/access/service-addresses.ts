/**
 * Service addresses: every `<service>.<node>.warren` (and every `<node>.warren`) gets an IPv6 address in a ULA
 * /64 and an IPv4 address in 100.64.0.0/10, derived from SHA-256 of the node id and the service name. The DNS
 * server answers with them; SOCKS5 clients that connect by address are mapped back through {@link lookup}; a
 * transparent mode (src/access/transparent) captures connections to them with the same table, so the format is fixed here:
 *
 * ```
 * candidate(i) = SHA-256("warren-address-v1" 0x00 | len(id) | id | len(service) | service | i as u32 big-endian)
 * IPv6 = fd77:6172:7265:6e00::/64 ("warren" in the ULA global id) + candidate bytes 0..7
 * IPv4 = 100.64.0.0 + (candidate bytes 8..11 as u32 mod 2^22), skipping the first and last address of the range
 * ```
 *
 * The IPv6 candidate whose bytes 0..7 are all zero is skipped too. Transparent mode may configure other ranges (an
 * IPv4 prefix and an IPv6 /64, {@link AddressTable.useRanges}); the derivation is the same within them.
 *
 * `id` is the node id's multihash bytes, `service` the UTF-8 name (empty for a node address). Collisions (two
 * names on one address; likely in IPv4's 22 bits once there are thousands of names) are detected per family and
 * resolved deterministically: the name that claimed the address first keeps it and the newcomer takes its next
 * candidate (i = 1, 2, …). Names are claimed in a fixed order at start (the `peers` aliases, sorted), so the
 * same config gives the same table.
 */
import { createHash } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import type { PeerId } from '@libp2p/interface'

export const ADDRESS_FORMAT = 'warren-address-v1'
export const IPV6_PREFIX = 'fd77:6172:7265:6e00::/64'
export const IPV4_RANGE = '100.64.0.0/10'

const V6_PREFIX_BYTES = [0xfd, 0x77, 0x61, 0x72, 0x72, 0x65, 0x6e, 0x00]
const V4_BASE = (100 << 24) | (64 << 16)
const V4_SIZE = 1 << 22
const MAX_PROBES = 64

export interface ServiceAddresses {
  ipv4: string
  ipv6: string
}

export interface AddressOwner {
  /** Node id (base58). */
  node: string
  /** Service name; empty for the node's own address. */
  service: string
}

/** The SHA-256 candidate `i` for (node id, service). */
export function candidate(idBytes: Uint8Array, service: string, i: number): Buffer {
  const name = Buffer.from(service, 'utf8')
  const n = Buffer.alloc(4)
  n.writeUInt32BE(i)
  return createHash('sha256')
    .update(ADDRESS_FORMAT)
    .update(Buffer.from([0, idBytes.length]))
    .update(idBytes)
    .update(Buffer.from([name.length]))
    .update(name)
    .update(n)
    .digest()
}

/**
 * The ranges addresses are derived in: `IPV4_RANGE` and `IPV6_PREFIX` unless configured (`transparent.ipv4Range`,
 * `transparent.ipv6Range`). `v4Base`/`v4Size` is an IPv4 prefix as numbers, `v6Prefix` the 8 bytes of a /64.
 */
export interface DerivationRanges {
  v4Base: number
  v4Size: number
  v6Prefix: readonly number[]
}

export const DEFAULT_RANGES: DerivationRanges = { v4Base: V4_BASE, v4Size: V4_SIZE, v6Prefix: V6_PREFIX_BYTES }

/**
 * The IPv6 address of a candidate, or undefined for the prefix's address with interface id 0 (transparent mode puts
 * it on its interface).
 */
export function ipv6Of(h: Buffer, ranges: DerivationRanges = DEFAULT_RANGES): string | undefined {
  if (h.subarray(0, 8).every((b) => b === 0)) return undefined
  const bytes = [...ranges.v6Prefix, ...h.subarray(0, 8)]
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  return compressIPv6(groups)
}

/** The IPv4 address of a candidate, or undefined for the range's first and last address. */
export function ipv4Of(h: Buffer, ranges: DerivationRanges = DEFAULT_RANGES): string | undefined {
  const off = h.readUInt32BE(8) % ranges.v4Size
  if (off === 0 || off === ranges.v4Size - 1) return undefined
  const v = (ranges.v4Base + off) >>> 0
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.')
}

function compressIPv6(groups: string[]): string {
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** Expands an IPv6 address to 8 groups for comparison, or returns undefined when it is not one. */
export function normalizeIPv6(ip: string): string | undefined {
  if (!isIPv6(ip)) return undefined
  const [head, tail] = ip.toLowerCase().split('::') as [string, string | undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const missing = 8 - h.length - t.length
  const groups = tail === undefined ? h : [...h, ...Array(missing).fill('0'), ...t]
  if (groups.length !== 8 || groups.some((g) => g.includes('.'))) return undefined
  return compressIPv6(groups.map((g) => Number.parseInt(g, 16).toString(16)))
}

/** Names the table holds at most by default (`dns.maxNames`): ~450 bytes each, so about 30 MiB. */
export const DEFAULT_MAX_NAMES = 65_536

export class AddressTable {
  /**
   * Names {@link tryAddressesOf} claims at most; names already in the table keep their addresses (an address is
   * never taken back: a program may still use it) and {@link addressesOf} always claims (config peers at start).
   */
  maxNames = DEFAULT_MAX_NAMES
  readonly #byKey = new Map<string, ServiceAddresses>()
  readonly #v4 = new Map<string, string>()
  readonly #v6 = new Map<string, string>()
  readonly #owners = new Map<string, AddressOwner>()
  #collisions = 0
  #ranges = DEFAULT_RANGES

  /**
   * Derives addresses in other ranges (transparent mode's configured ones); throws when names already hold addresses
   * in different ranges (an address handed out is never moved).
   */
  useRanges(ranges: DerivationRanges): void {
    const same =
      ranges.v4Base === this.#ranges.v4Base &&
      ranges.v4Size === this.#ranges.v4Size &&
      ranges.v6Prefix.every((b, i) => b === this.#ranges.v6Prefix[i])
    if (same) return
    if (this.#byKey.size > 0) throw new Error('service addresses were handed out before their ranges were set')
    this.#ranges = { v4Base: ranges.v4Base, v4Size: ranges.v4Size, v6Prefix: [...ranges.v6Prefix] }
  }

  /** The addresses of (node, service); claims them on first use. */
  addressesOf(node: PeerId, service = ''): ServiceAddresses {
    const key = `${node.toString()}/${service}`
    const known = this.#byKey.get(key)
    if (known !== undefined) return known
    const idBytes = node.toMultihash().bytes
    const ipv6 = this.#claim(this.#v6, key, (i) => ipv6Of(candidate(idBytes, service, i), this.#ranges))
    const ipv4 = this.#claim(this.#v4, key, (i) => ipv4Of(candidate(idBytes, service, i), this.#ranges))
    const out = { ipv4, ipv6 }
    this.#byKey.set(key, out)
    this.#owners.set(key, { node: node.toString(), service })
    return out
  }

  /** Like {@link addressesOf}, but undefined for a new name once the table holds `maxNames` names. */
  tryAddressesOf(node: PeerId, service = ''): ServiceAddresses | undefined {
    const known = this.#byKey.get(`${node.toString()}/${service}`)
    if (known !== undefined) return known
    if (this.#byKey.size >= this.maxNames) return undefined
    return this.addressesOf(node, service)
  }

  /** Names holding addresses. */
  get size(): number {
    return this.#byKey.size
  }

  #claim(table: Map<string, string>, key: string, at: (i: number) => string | undefined): string {
    for (let i = 0; i < MAX_PROBES; i++) {
      const addr = at(i)
      if (addr === undefined) continue
      const owner = table.get(addr)
      if (owner === undefined || owner === key) {
        table.set(addr, key)
        return addr
      }
      this.#collisions++
    }
    // 64 collisions in a row needs millions of names in 2^22 addresses; say so rather than loop forever
    throw new Error(`no free service address for ${key} after ${MAX_PROBES} candidates`)
  }

  /** Who owns `ip` (IPv4 or IPv6), if it was handed out. */
  lookup(ip: string): AddressOwner | undefined {
    const key = isIPv4(ip) ? this.#v4.get(ip) : this.#v6.get(normalizeIPv6(ip) ?? '')
    return key === undefined ? undefined : this.#owners.get(key)
  }

  /** Collisions seen so far (for status and tests). */
  get collisions(): number {
    return this.#collisions
  }
}
