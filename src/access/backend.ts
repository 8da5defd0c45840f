/** The access port's view of a node: name resolution and service streams, nothing else. */
import type { Stream } from '@libp2p/interface'
import type { GatewayBackend } from '../gateway/gateway.ts'
import type { AddressBook } from '../identity/address-book.ts'
import { formatNodeIdBase36 } from '../identity/node-id.ts'

export interface NodeForAccess {
  readonly addressBook: AddressBook
  openService(node: string, service: string, opts?: { signal?: AbortSignal }): Promise<Stream>
}

/** Resolved names are kept this long: parsing ids on every request costs more than the request's own work. */
const RESOLVE_TTL_MS = 5_000
const RESOLVE_CACHE_MAX = 1_024

/**
 * Stream opens in flight to one node at most. Warren nodes accept bursts of early streams (`maxEarlyStreams` in
 * src/p2p/create.ts, 4096; Yamux's default of 10 aborted the connection); this bound keeps one client's burst
 * from monopolising a peer, well below that.
 */
export const MAX_OPENING_PER_PEER = 256

/** Runs `open` with at most `max` at a time per key, the rest queued in order. */
export function openGate(max: number): <T>(key: string, open: () => Promise<T>) => Promise<T> {
  const gates = new Map<string, { active: number; waiting: (() => void)[] }>()
  return async (key, open) => {
    let g = gates.get(key)
    if (g === undefined) {
      g = { active: 0, waiting: [] }
      gates.set(key, g)
    }
    const gate = g
    if (gate.active >= max) await new Promise<void>((resolve) => gate.waiting.push(resolve))
    gate.active++
    try {
      return await open()
    } finally {
      gate.active--
      const next = gate.waiting.shift()
      if (next !== undefined) next()
      else if (gate.active === 0) gates.delete(key)
    }
  }
}

export function accessBackend(node: NodeForAccess): GatewayBackend {
  const cache = new Map<string, { ids: { id: string; base36: string }; until: number }>()
  const gate = openGate(MAX_OPENING_PER_PEER)
  return {
    resolveNode(name, opts) {
      const now = Date.now()
      const hit = cache.get(name)
      if (hit !== undefined && hit.until > now) return hit.ids
      // learn: false (browser requests): a ticket with addresses not known yet throws ERR_UNKNOWN_ADDRESSES; once
      // checked, resolving as usual remembers only known or configured (alias) addresses, which openService needs
      if (opts?.learn === false) node.addressBook.resolve(name, [], { allowNewAddresses: false })
      const { id } = node.addressBook.resolve(name) // throws for unknown names: those are never cached
      const ids = { id: id.toString(), base36: formatNodeIdBase36(id) }
      if (cache.size >= RESOLVE_CACHE_MAX) cache.clear()
      cache.set(name, { ids, until: now + RESOLVE_TTL_MS })
      return ids
    },
    openService: (id, service, opts) => gate(id, () => node.openService(id, service, opts)),
  }
}
