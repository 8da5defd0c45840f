/** The access port's view of a node: name resolution and service streams, nothing else. */
import type { Stream } from '@libp2p/interface'
import type { GatewayBackend } from '../gateway/gateway.ts'
import { formatNodeIdBase36 } from '../identity/node-id.ts'
import type { AddressBook } from '../node/address-book.ts'

export interface NodeForAccess {
  readonly addressBook: AddressBook
  openService(node: string, service: string, opts?: { signal?: AbortSignal }): Promise<Stream>
}

export function accessBackend(node: NodeForAccess): GatewayBackend {
  return {
    resolveNode(name) {
      const { id } = node.addressBook.resolve(name)
      return { id: id.toString(), base36: formatNodeIdBase36(id) }
    },
    openService: (id, service, opts) => node.openService(id, service, opts),
  }
}
