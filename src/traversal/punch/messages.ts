/**
 * Messages of `/warren/punch/1.0.0`, the direct-path upgrade protocol run over an existing (usually relayed) connection.
 * Each message is one length-prefixed JSON object:
 *
 * - `offer`  (initiator → responder): `token` (32 hex chars), `mapped` (STUN-learned public UDP endpoint), `nat`, and
 *   `tcp` (the public TCP mapping of the port it will connect from, when STUN over TCP answered) with `tcpNat`
 *   (`easy` or `hard`, as `nat` for UDP; absent means easy)
 * - `answer` (responder → initiator): `mapped`, `nat`, `tcp`, `tcpNat` likewise
 * - `armed`  (hard side → easy side of a birthday attempt): its mappings are open, start random probing
 * - `direct` (dialer → other side): the connection is up at `addr` (`/ip4/…/tcp/…` for TCP, `/ip4/…/udp/…` for UDX)
 * - `failed` (either side): punching found no path; `reason`
 * - `unmapped` (dialer → other side): none of the peer's router-mapped addresses (`portmap` in the offer or answer,
 *   multiaddrs such as `/ip4/…/tcp/…`) answered a plain dial; punching goes on; `reason`
 *
 * @packageDocumentation
 */
import { isIPv4, isIPv6 } from 'node:net'
import { WarrenError } from '../../errors.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { NatBehaviour } from './punch.ts'

export const PUNCH_PROTOCOL = '/warren/punch/1.0.0'
/** Largest message accepted (they are all tiny). */
export const MAX_PUNCH_MESSAGE = 1024

/** The optional fields of an offer or answer: TCP mapping, and the addresses the sender's router maps to it. */
interface Extras {
  tcp?: Endpoint
  tcpNat?: NatBehaviour
  portmap?: string[]
}

export type PunchMessage =
  | ({ type: 'offer'; token: string; mapped: Endpoint; nat: NatBehaviour } & Extras)
  | ({ type: 'answer'; mapped: Endpoint; nat: NatBehaviour } & Extras)
  | { type: 'armed' }
  | { type: 'direct'; addr: string }
  | { type: 'failed'; reason: string }
  | { type: 'unmapped'; reason: string }

/** At most this many router-mapped addresses in one offer or answer. */
export const MAX_PORTMAP_ADDRS = 4
const PORTMAP_ADDR = /^\/ip4\/\d{1,3}(\.\d{1,3}){3}\/(tcp|udp)\/\d{1,5}$/

function bad(what: string): WarrenError {
  return new WarrenError('ERR_PROTOCOL', `the peer sent a malformed ${PUNCH_PROTOCOL} message: ${what}`, {
    hint: 'The peer runs an incompatible Warren version; upgrade both nodes. The relayed connection stays usable.',
  })
}

function endpoint(v: unknown): Endpoint {
  const e = v as Partial<Endpoint> | null
  if (e === null || typeof e !== 'object' || typeof e.host !== 'string' || typeof e.port !== 'number') {
    throw bad('mapped must be {host, port}')
  }
  if (!(isIPv4(e.host) || isIPv6(e.host)) || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535) {
    throw bad(`mapped ${e.host}:${e.port} is not an IP address and port`)
  }
  return { host: e.host, port: e.port }
}

function nat(v: unknown): NatBehaviour {
  if (v !== 'easy' && v !== 'hard') throw bad('nat must be "easy" or "hard"')
  return v
}

/** The optional TCP mapping and its NAT kind (absent in messages from versions without TCP direct paths). */
function tcp(raw: Record<string, unknown>): { tcp?: Endpoint; tcpNat?: NatBehaviour } {
  if (raw.tcp === undefined) return {}
  return { tcp: endpoint(raw.tcp), tcpNat: raw.tcpNat === undefined ? 'easy' : nat(raw.tcpNat) }
}

/** The optional `portmap` list: IPv4 TCP/UDP multiaddrs without a peer id. */
function portmap(raw: Record<string, unknown>): { portmap?: string[] } {
  if (raw.portmap === undefined) return {}
  const list = raw.portmap
  if (!Array.isArray(list) || list.length > MAX_PORTMAP_ADDRS) {
    throw bad(`portmap must be a list of at most ${MAX_PORTMAP_ADDRS} addresses`)
  }
  for (const a of list) {
    if (typeof a !== 'string' || !PORTMAP_ADDR.test(a)) throw bad(`portmap address ${JSON.stringify(a)}`)
  }
  return list.length === 0 ? {} : { portmap: list as string[] }
}

export function encodePunchMessage(msg: PunchMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(msg))
}

/** Parses and validates one message; throws ERR_PROTOCOL naming what is wrong. */
export function decodePunchMessage(bytes: Uint8Array): PunchMessage {
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
  } catch {
    throw bad('not JSON')
  }
  if (raw === null || typeof raw !== 'object') throw bad('not an object')
  switch (raw.type) {
    case 'offer':
      if (typeof raw.token !== 'string' || !/^[0-9a-f]{32}$/.test(raw.token)) throw bad('token must be 32 hex digits')
      return {
        type: 'offer',
        token: raw.token,
        mapped: endpoint(raw.mapped),
        nat: nat(raw.nat),
        ...tcp(raw),
        ...portmap(raw),
      }
    case 'answer':
      return { type: 'answer', mapped: endpoint(raw.mapped), nat: nat(raw.nat), ...tcp(raw), ...portmap(raw) }
    case 'armed':
      return { type: 'armed' }
    case 'direct':
      if (typeof raw.addr !== 'string') throw bad('addr must be a string')
      return { type: 'direct', addr: raw.addr }
    case 'failed':
      return { type: 'failed', reason: typeof raw.reason === 'string' ? raw.reason.slice(0, 300) : 'unknown' }
    case 'unmapped':
      return { type: 'unmapped', reason: typeof raw.reason === 'string' ? raw.reason.slice(0, 300) : 'unknown' }
    default:
      throw bad(`unknown type ${JSON.stringify(raw.type)}`)
  }
}
