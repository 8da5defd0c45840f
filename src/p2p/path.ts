/** Which path a connection takes: direct, or through a relay (circuit relay v2). */
import type { Connection } from '@libp2p/interface'
import { isRawWebRtc } from './webrtc/tunnel.ts'

/** How a connection to a peer runs. */
export interface PathInfo {
  kind: 'direct' | 'relay'
  /** The remote multiaddr in use (for relay: the relay's circuit address). */
  addr: string
  /** Relay node id when kind is relay. */
  relay?: string
}

/** Whether each connection seen is relayed: its remote address never changes, and its string costs microseconds. */
const relayed = new WeakMap<Connection, boolean>()

export function isRelayed(conn: Connection): boolean {
  let r = relayed.get(conn)
  if (r === undefined) {
    r = conn.remoteAddr.toString().includes('/p2p-circuit')
    relayed.set(conn, r)
  }
  return r
}

export function describePath(conn: Connection): PathInfo {
  const addr = conn.remoteAddr.toString()
  if (!isRelayed(conn)) return { kind: 'direct', addr }
  const relay = /\/p2p\/([^/]+)\/p2p-circuit/.exec(addr)?.[1]
  return relay === undefined ? { kind: 'relay', addr } : { kind: 'relay', addr, relay }
}

/**
 * The connection new streams should use: open, direct before relayed, newest first. A raw WebRTC connection is never
 * one: it carries only its tunnel (src/p2p/webrtc/tunnel.ts), whose own connection is direct.
 */
export function bestConnection(conns: readonly Connection[]): Connection | undefined {
  const open = conns.filter((c) => c.status === 'open' && !isRawWebRtc(c))
  return open.find((c) => !isRelayed(c)) ?? open[0]
}

/** `direct 198.18.0.3:40123` or `relay 12D3KooW…` for humans. */
export function formatPath(p: PathInfo): string {
  if (p.kind === 'relay') return `relay ${p.relay ?? p.addr}`
  if (p.addr.startsWith('/webrtc/')) return 'direct webrtc'
  const m = /^\/ip[46]\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(p.addr)
  if (m === null) return `direct ${p.addr}`
  return `direct ${m[1]!.includes(':') ? `[${m[1]}]` : m[1]}:${m[2]}`
}
