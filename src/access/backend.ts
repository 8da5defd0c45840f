/** The access port's view of a node: name resolution and service streams, nothing else. */
import type { Stream } from '@libp2p/interface'
import type { GatewayBackend } from '../gateway/gateway.ts'
import { formatNodeIdBase36 } from '../identity/node-id.ts'
import type { AddressBook } from '../node/address-book.ts'

export interface NodeForAccess {
  readonly addressBook: AddressBook
  openService(node: string, service: string, opts?: { signal?: AbortSignal }): Promise<Stream>
}

/** Resolved names are kept this long: parsing ids on every request costs more than the request's own work. */
const RESOLVE_TTL_MS = 5_000
const RESOLVE_CACHE_MAX = 1_024

export function accessBackend(node: NodeForAccess): GatewayBackend {
  const cache = new Map<string, { ids: { id: string; base36: string }; until: number }>()
  return {
    resolveNode(name) {
      const now = Date.now()
      const hit = cache.get(name)
      if (hit !== undefined && hit.until > now) return hit.ids
      const { id } = node.addressBook.resolve(name) // throws for unknown names: those are never cached
      const ids = { id: id.toString(), base36: formatNodeIdBase36(id) }
      if (cache.size >= RESOLVE_CACHE_MAX) cache.clear()
      cache.set(name, { ids, until: now + RESOLVE_TTL_MS })
      return ids
    },
    openService: (id, service, opts) => node.openService(id, service, opts),
  }
}
