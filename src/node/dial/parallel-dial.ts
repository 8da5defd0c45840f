/**
 * Dialing a node over every path at once: its direct addresses (through libp2p's dial queue, one after another) and
 * each of its relay addresses (each on its own, outside the queue, which would otherwise try them only after every
 * direct address timed out). The first connection wins and is used at once; a direct dial still under way when a
 * relayed connection won goes on in the background, and new streams move to it when it succeeds (see
 * `bestConnection` in src/p2p/path.ts). Other relay dials are abandoned.
 *
 * When every path fails, a relay's refusal becomes ERR_RELAY_REFUSED with the relay's reason.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { relayClientParts } from '../../relay/client/client-store.ts'
import { queryRelayInfo } from '../../relay/info.ts'
import { circuitRefused, RELAY_STATUS, relayStatusOf } from '../../relay/status.ts'

export function isCircuitAddr(addr: Multiaddr): boolean {
  return addr.toString().includes('/p2p-circuit')
}

function withPeer(addr: Multiaddr, peer: PeerId): Multiaddr {
  const last = addr.getComponents().at(-1)
  if (last?.name === 'p2p') return addr
  return addr.encapsulate(`/p2p/${peer}`)
}

function relayOf(addr: Multiaddr): string | undefined {
  return /\/p2p\/([^/]+)\/p2p-circuit/.exec(addr.toString())?.[1]
}

/** Why one relay path failed, as a WarrenError when the relay refused (asking a Warren relay for its reason). */
async function relayFailure(
  libp2p: WarrenLibp2p,
  addr: Multiaddr,
  peer: PeerId,
  err: unknown,
): Promise<WarrenError | undefined> {
  const status = relayStatusOf(err)
  const relay = relayOf(addr)
  if (status === undefined || relay === undefined) return undefined
  let reason: string | undefined
  if (status === RELAY_STATUS.PERMISSION_DENIED || status === RELAY_STATUS.RESOURCE_LIMIT_EXCEEDED) {
    const relayConn = libp2p.getConnections().find((c) => c.remotePeer.toString() === relay && c.status === 'open')
    if (relayConn !== undefined) {
      const info = await queryRelayInfo(libp2p, relayConn.remotePeer, { signal: AbortSignal.timeout(3_000) }).catch(
        () => undefined,
      )
      if (info?.refusal?.kind === 'circuit') reason = info.refusal.reason
    }
  }
  return circuitRefused(relay, peer.toString(), status, reason)
}

/**
 * Connects to `peer` over all of `addrs` in parallel (direct ones as one queued dial, each relay on its own).
 * Rejects with the relay's WarrenError when a relay refused, else with an AggregateError of every path's error.
 */
export async function dialAllPaths(
  libp2p: WarrenLibp2p,
  peer: PeerId,
  addrs: readonly Multiaddr[],
  opts: { signal: AbortSignal },
): Promise<Connection> {
  const unique = [...new Map(addrs.map((a) => [a.toString(), withPeer(multiaddr(a.toString()), peer)])).values()]
  const direct = unique.filter((a) => !isCircuitAddr(a))
  const relayed = unique.filter(isCircuitAddr)
  if (relayed.length === 0) return libp2p.dial(direct.length > 0 ? direct : peer, { signal: opts.signal })

  const parts = relayClientParts(libp2p)
  const relayAborts = relayed.map(() => new AbortController())
  const attempts: Array<Promise<Connection>> = relayed.map((addr, i) =>
    parts.dialAddress(addr, AbortSignal.any([opts.signal, relayAborts[i]!.signal])),
  )
  if (direct.length > 0) attempts.unshift(libp2p.dial(direct, { signal: opts.signal }))
  for (const a of attempts) a.catch(() => {}) // losers fail on their own; only the first success matters

  try {
    const conn = await Promise.any(attempts)
    for (const c of relayAborts) c.abort(new Error('another path connected first'))
    return conn
  } catch (err) {
    const errors = (err as AggregateError).errors ?? [err]
    const relayErrors = errors.slice(direct.length > 0 ? 1 : 0)
    const refusals = await Promise.all(relayed.map((addr, i) => relayFailure(libp2p, addr, peer, relayErrors[i])))
    const refused = refusals.find((e) => e?.code === 'ERR_RELAY_REFUSED')
    if (refused !== undefined) throw refused
    throw new AggregateError(
      errors.map((e, i) => {
        const known = i >= errors.length - relayed.length ? refusals[i - (errors.length - relayed.length)] : undefined
        return known ?? e
      }),
      'every path failed',
    )
  }
}
