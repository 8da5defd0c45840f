/**
 * Addresses that only mean something on the host that has them: loopback (127.0.0.0/8, ::1, `localhost`) and
 * link-local (169.254.0.0/16, fe80::/10). A node never hands them to other hosts (in its ticket or its DHT record):
 * there they name the other host itself, so a dial goes astray and STUN to a "relay" at 127.0.0.1 answers nothing.
 * The one exception is a node whose every address is host-local (nodes and relays on one machine, as in tests): its
 * addresses reach nobody else anyway. A circuit address counts by its relay's address (`/ip4/127.0.0.1/…/p2p-circuit`
 * is host-local); a circuit through a relay address the operator configured in `relays` is kept as configured.
 *
 * @example
 * ```ts
 * shareableAddrs([multiaddr('/ip4/127.0.0.1/tcp/4781'), multiaddr('/ip4/203.0.113.5/tcp/4781')])
 * // [/ip4/203.0.113.5/tcp/4781]
 * ```
 */
import { isIP } from 'node:net'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Whether an IP address (v4 or v6) or host name is loopback or link-local. */
export function isHostLocalHost(host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.') || h.startsWith('169.254.')
  if (isIP(h) === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)
    if (mapped !== null) return isHostLocalHost(mapped[1]!)
    return h === '::1' || /^fe[89ab][0-9a-f]:/.test(h)
  }
  return false
}

/** Whether the first host of a multiaddr (the relay's, for a circuit address) is loopback or link-local. */
export function isHostLocal(addr: Multiaddr): boolean {
  const host = addr
    .getComponents()
    .find((c) => c.name === 'ip4' || c.name === 'ip6' || c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6')
  return host?.value !== undefined && isHostLocalHost(host.value)
}

/** The circuit address through a relay of config `relays` (`…/p2p/<relay id>`). */
export function circuitVia(relay: string): string {
  return `${relay}/p2p-circuit`
}

/**
 * The addresses a node may hand to other hosts: `addrs` without host-local ones, unless every one of them is
 * host-local. Addresses in `keep` (circuit addresses through the relays of config `relays`, {@link circuitVia}) stay
 * as the operator configured them.
 */
export function shareableAddrs(addrs: readonly Multiaddr[], keep: readonly string[] = []): Multiaddr[] {
  if (addrs.every(isHostLocal)) return [...addrs]
  const kept = new Set(keep)
  return addrs.filter((a) => !isHostLocal(a) || kept.has(a.toString()))
}
