/**
 * The parts of @libp2p/circuit-relay-v2's server (4.2.x) that Warren's relay hooks (hooks.ts) wrap, and
 * {@link serverInternals}, which finds them on a started node or throws when the installed server has another shape.
 */

import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'

/** A reservation as the server's reservation store keeps it. */
export interface StoredReservation {
  /** The address the reservation was made from. */
  addr: Multiaddr
  expiry: Date
  /** Circuits' limit; `undefined` (none) is assigned, never deleted (hooks.ts `setLimit`). */
  limit?: { data?: bigint; duration?: number } | undefined
  /** Aborts at the TTL and then deletes the reservation; `reset` moves its timer, `clear` stops it. */
  signal?: { clear?(): void; reset?(ms?: number): void }
}

/** The parts of @libp2p/circuit-relay-v2's server Warren hooks into (4.2.x). */
export interface ServerInternals {
  reservationStore: {
    reserve(peer: PeerId, addr: Multiaddr, limit?: unknown): { status: string; expire?: number }
    get(peer: PeerId): StoredReservation | undefined
    removeReservation(peer: PeerId): void
    reservations: {
      entries(): IterableIterator<[PeerId, StoredReservation]>
      get(peer: PeerId): StoredReservation | undefined
      set(peer: PeerId, reservation: StoredReservation): unknown
      delete(peer: PeerId): boolean
      clear(): void
    }
  }
  handleReserve(opts: { connection: Connection }, options: AbortOptions): Promise<void>
  handleConnect(opts: { connection: Connection; stream: { unwrap(): Stream } }, options: AbortOptions): Promise<void>
  stopHop(opts: { connection: Connection }, options: AbortOptions): Promise<Stream | undefined>
}

/** The circuit relay server of `libp2p`; throws ERR_INTERNAL when it lacks a part Warren hooks into. */
export function serverInternals(libp2p: WarrenLibp2p): ServerInternals {
  const server = libp2p.services.relay as unknown as Partial<ServerInternals> | undefined
  const store = server?.reservationStore
  if (
    server === undefined ||
    typeof store?.reserve !== 'function' ||
    typeof store.get !== 'function' ||
    typeof store.removeReservation !== 'function' ||
    ['entries', 'get', 'set', 'delete', 'clear'].some(
      (m) => typeof (store.reservations as Record<string, unknown> | undefined)?.[m] !== 'function',
    ) ||
    typeof server.handleReserve !== 'function' ||
    typeof server.handleConnect !== 'function' ||
    typeof server.stopHop !== 'function'
  ) {
    throw new WarrenError('ERR_INTERNAL', 'the circuit relay server does not have the shape Warren hooks into', {
      hint: 'Warren supports @libp2p/circuit-relay-v2 4.2.x; reinstall the dependencies from package-lock.json.',
    })
  }
  return server as ServerInternals
}
