/**
 * The node side of circuit relay v2 that Warren drives: the relay transport's reservation store (to make and renew
 * reservations) and the transport manager (to listen on a relay, which advertises its circuit addresses).
 *
 * These are js-libp2p internals (libp2p 3.3, @libp2p/circuit-relay-v2 4.2); the shapes are checked once so that a
 * changed dependency fails with a clear ERR_INTERNAL instead of an undefined call.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'

export interface ClientReservation {
  /** Seconds since the epoch. */
  expire: bigint
  addrs: Uint8Array[]
}

export interface ClientStore {
  addRelay(peer: PeerId, type: 'configured'): Promise<{ details: { reservation: ClientReservation } }>
  hasReservation(peer: PeerId): boolean
  getReservation(peer: PeerId): ClientReservation | undefined
}

export interface RelayClientParts {
  store: ClientStore
  listen(addrs: Multiaddr[]): Promise<void>
  /** Dials one address with the transport for it, outside libp2p's per-peer dial queue. */
  dialAddress(addr: Multiaddr, signal: AbortSignal): Promise<Connection>
}

interface Internals {
  components?: {
    transportManager?: {
      getTransports(): Array<{ [Symbol.toStringTag]?: string; reservationStore?: ClientStore }>
      listen(addrs: Multiaddr[]): Promise<void>
      dial(addr: Multiaddr, options: { signal: AbortSignal }): Promise<Connection>
    }
  }
}

const TRANSPORT_TAG = '@libp2p/circuit-relay-v2-transport'

export function relayClientParts(libp2p: WarrenLibp2p): RelayClientParts {
  const tm = (libp2p as unknown as Internals).components?.transportManager
  const transport = tm?.getTransports().find((t) => t[Symbol.toStringTag] === TRANSPORT_TAG)
  const store = transport?.reservationStore
  if (tm === undefined || store === undefined || typeof store.addRelay !== 'function') {
    throw new WarrenError('ERR_INTERNAL', 'this libp2p node has no circuit relay transport Warren can drive', {
      hint: 'Start the node with a preset that dials through relays (default or test), and reinstall the dependencies from package-lock.json.',
    })
  }
  return {
    store,
    listen: (addrs) => tm.listen(addrs),
    dialAddress: (addr, signal) => tm.dial(addr, { signal }),
  }
}
