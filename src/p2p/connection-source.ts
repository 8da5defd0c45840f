/**
 * Where an inbound connection comes from, for limits per source: `relay <id>` for a relayed connection (every one
 * comes from its relay's address), `ip <address>` (IPv6: its /64, which one host usually gets whole), or `other`.
 */
import { isIPv6 } from 'node:net'
import type { Multiaddr } from '@multiformats/multiaddr'

/** `relay <id>`, `ip <address or /64>`, or `other`. */
export function connectionSource(addr: Multiaddr): string {
  const parts = addr.getComponents()
  const circuit = parts.findIndex((c) => c.name === 'p2p-circuit')
  if (circuit >= 0) {
    const relay = parts
      .slice(0, circuit)
      .reverse()
      .find((c) => c.name === 'p2p')?.value
    if (relay !== undefined) return `relay ${relay}`
    const host = parts.slice(0, circuit).find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
    return host === undefined ? 'relay ?' : `relay ${host}`
  }
  const ip = parts.find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
  if (ip === undefined) return 'other'
  const v4 = mappedIPv4(ip)
  if (v4 !== undefined) return `ip ${v4}`
  return `ip ${isIPv6(ip) ? prefix64(ip) : ip}`
}

/**
 * The IPv4 address of an IPv4-mapped IPv6 address (`::ffff:198.18.0.9`, or `::ffff:c612:9` as multiaddrs print it):
 * an IPv4 client of a dual-stack listener is counted by its IPv4 address, not lumped into `::/64` with all the others.
 */
function mappedIPv4(ip: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1]
  if (dotted !== undefined) return dotted
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip)
  if (hex === null) return undefined
  const hi = Number.parseInt(hex[1]!, 16)
  const lo = Number.parseInt(hex[2]!, 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/** The /64 of an IPv6 address (`2001:db8:1:2::/64`): one host usually gets a whole /64. */
function prefix64(ip: string): string {
  const [head = '', tail] = ip.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`
}
