/**
 * Parks the relay's idle client connections (parked-link.ts). Every `periodMs` (default 10 s) each connection is
 * looked at once, a slice per `tickMs`; one open for at least `minAgeMs` with no stream and nothing buffered is
 * parked. A parked connection wakes by itself when it is used, and is looked at again after that.
 *
 * @example
 * ```ts
 * const parking = startIdleParking(libp2p, { log })
 * // …
 * parking.stop()
 * ```
 */
import { WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { noiseCrypto } from '../../p2p/patches/noise-crypto.ts'
import type { MuxerFactory } from './parkable.ts'
import { parkConnection, parkedLink, parkingCounts } from './parked-link.ts'
import { connectionRounds } from './rounds.ts'

export interface IdleParkingOptions {
  /** Each connection is looked at once per this many ms. */
  periodMs?: number
  /** How often a slice of the connections is looked at, ms. */
  tickMs?: number
  /** Connections younger than this are left alone (their first streams: identify, the reservation). */
  minAgeMs?: number
  log?: (message: string) => void
}

export interface IdleParking {
  /** Parked now, parked since the start, woken since the start (this process). */
  counts(): { parked: number; parks: number; wakes: number }
  stop(): void
}

/** The node's stream muxer factories by protocol (libp2p's upgrader keeps the ones it was configured with). */
export function muxerFactories(libp2p: object): (protocol: string) => MuxerFactory | undefined {
  const upgrader = (libp2p as { components?: { upgrader?: { streamMuxers?: unknown } } }).components?.upgrader
  const muxers = upgrader?.streamMuxers
  if (!(muxers instanceof Map)) {
    throw new WarrenError('ERR_INTERNAL', "libp2p's upgrader has no map of stream muxers: cannot park idle connections")
  }
  return (protocol) => muxers.get(protocol) as MuxerFactory | undefined
}

/** The node's transport listeners (libp2p's transport manager), for the TCP listener of each parked socket. */
export function transportListeners(libp2p: object): () => Iterable<unknown> {
  const manager = (libp2p as { components?: { transportManager?: { getListeners?: () => unknown[] } } }).components
    ?.transportManager
  if (typeof manager?.getListeners !== 'function') {
    throw new WarrenError('ERR_INTERNAL', "libp2p has no transport manager's listeners: cannot park idle connections")
  }
  return () => manager.getListeners!()
}

/**
 * Whether the node's Noise seals with Warren's cipher (`noise({ crypto: noiseCrypto })`), whose keys a parked
 * connection can keep alone (src/p2p/patches/session-cipher.ts).
 */
export function sealsWithOwnCipher(libp2p: object): boolean {
  const encrypters = (libp2p as { components?: { upgrader?: { connectionEncrypters?: unknown } } }).components?.upgrader
    ?.connectionEncrypters
  if (!(encrypters instanceof Map)) return false
  const noise = encrypters.get('/noise') as { crypto?: { encrypt?: unknown } } | undefined
  return noise?.crypto?.encrypt === noiseCrypto.chaCha20Poly1305Encrypt
}

export function startIdleParking(
  libp2p: Pick<WarrenLibp2p, 'getConnections'>,
  opts: IdleParkingOptions = {},
): IdleParking {
  const periodMs = opts.periodMs ?? 10_000
  const tickMs = opts.tickMs ?? 1_000
  const minAgeMs = opts.minAgeMs ?? periodMs
  const log = opts.log ?? (() => {})
  const muxers = muxerFactories(libp2p)
  const listeners = transportListeners(libp2p)
  const ownCipher = sealsWithOwnCipher(libp2p)
  let failed = false
  const rounds = connectionRounds(libp2p, { periodMs, tickMs }, (conn) => {
    if (conn.direction !== 'inbound' || Date.now() - conn.timeline.open < minAgeMs || parkedLink(conn) !== undefined) {
      return
    }
    try {
      parkConnection(conn, muxers, listeners(), ownCipher)
    } catch (err) {
      if (!failed) log(`could not park an idle connection: ${(err as Error).message}`)
      failed = true
    }
  })

  return {
    counts: parkingCounts,
    stop: () => rounds.stop(),
  }
}
