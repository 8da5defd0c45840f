/**
 * Renewing and checking a reservation on a relay that this node is connected to, in Warren's own hands.
 *
 * js-libp2p's reservation store refreshes a reservation only in the last 10 minutes of its lifetime (asked earlier, it
 * returns the reservation it has without asking the relay), and it never asks whether the relay still holds one: a
 * relay that restarted, or dropped the reservation, stays "reserved" in the store until its connection closes or the
 * reservation expires. So {@link renewReservation} sends circuit relay v2's RESERVE itself on the open connection to
 * the relay (the relay extends the reservation it has, or makes a new one), and {@link reservationHeld} asks a Warren
 * relay (`/warren/relay/1.0.0`) whether it holds one for this node.
 *
 * @example
 * ```ts
 * const { expiresAt } = await renewReservation(libp2p, relayId, AbortSignal.timeout(4_000))
 * if ((await reservationHeld(libp2p, relayId, AbortSignal.timeout(4_000))) === false) …re-reserve
 * ```
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { WarrenError } from '../../errors.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { isRelayed } from '../../p2p/path.ts'
import { queryRelayInfo, RELAY_INFO_PROTOCOL } from '../info.ts'
import { reservationRefused } from '../status.ts'

export const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/** circuit relay v2 `Status` numbers and their names (as in src/relay/status.ts). */
const STATUS_NAMES: Record<number, string> = {
  100: 'OK',
  200: 'RESERVATION_REFUSED',
  201: 'RESOURCE_LIMIT_EXCEEDED',
  202: 'PERMISSION_DENIED',
  203: 'CONNECTION_FAILED',
  204: 'NO_RESERVATION',
  400: 'MALFORMED_MESSAGE',
  401: 'UNEXPECTED_MESSAGE',
}

/** `HopMessage { type: RESERVE }`, length-prefixed (varint 2, field 1 varint 0). */
const RESERVE = Uint8Array.of(2, 0x08, 0x00)
const MAX_ANSWER = 4096

function varint(buf: Uint8Array, at: number): { value: number; next: number } {
  let value = 0
  let scale = 1
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!
    value += (b & 0x7f) * scale
    scale *= 128
    if ((b & 0x80) === 0) return { value, next: i + 1 }
  }
  throw new Error('truncated varint')
}

/** The varint and length-delimited fields of a protobuf message, by field number (the last one of each wins). */
function fields(msg: Uint8Array): Map<number, number | Uint8Array> {
  const out = new Map<number, number | Uint8Array>()
  let at = 0
  while (at < msg.length) {
    const tag = varint(msg, at)
    at = tag.next
    const wire = tag.value & 7
    const field = Math.floor(tag.value / 8)
    if (wire === 0) {
      const v = varint(msg, at)
      out.set(field, v.value)
      at = v.next
    } else if (wire === 2) {
      const len = varint(msg, at)
      out.set(field, msg.subarray(len.next, len.next + len.value))
      at = len.next + len.value
    } else if (wire === 1) at += 8
    else if (wire === 5) at += 4
    else throw new Error(`unexpected protobuf wire type ${wire}`)
  }
  return out
}

/** Reads one length-prefixed message from `stream`. */
async function readMessage(stream: Stream): Promise<Uint8Array> {
  let got = new Uint8Array(0)
  for await (const chunk of stream) {
    const bytes = chunk.subarray()
    const next = new Uint8Array(got.length + bytes.length)
    next.set(got)
    next.set(bytes, got.length)
    got = next
    if (got.length > MAX_ANSWER) throw new Error('the answer is too long')
    try {
      const len = varint(got, 0)
      if (got.length >= len.next + len.value) return got.subarray(len.next, len.next + len.value)
    } catch {
      // the length prefix itself is not complete yet
    }
  }
  throw new Error('the relay closed the stream before answering')
}

/** The open direct (not relayed) connection to `relay`, if any. */
export function relayConnection(libp2p: WarrenLibp2p, relay: PeerId): Connection | undefined {
  return libp2p.getConnections(relay).find((c) => c.status === 'open' && !isRelayed(c))
}

/**
 * Sends RESERVE to `relay` on the open connection to it: the relay renews this node's reservation (or makes one).
 * Resolves with when it expires (ms since the epoch); throws ERR_RELAY_REFUSED with the relay's status, or
 * ERR_RELAY_UNREACHABLE when there is no connection or no answer.
 */
export async function renewReservation(
  libp2p: WarrenLibp2p,
  relay: PeerId,
  signal: AbortSignal,
): Promise<{ expiresAt: number }> {
  const conn = relayConnection(libp2p, relay)
  if (conn === undefined) {
    throw new WarrenError('ERR_RELAY_UNREACHABLE', `no open connection to relay ${relay} to renew the reservation on`)
  }
  let stream: Stream | undefined
  try {
    stream = await conn.newStream(HOP_PROTOCOL, { signal })
    const s = stream
    const onAbort = (): void => s.abort(new Error('timed out'))
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const answer = readMessage(s)
      s.send(RESERVE)
      const msg = fields(await answer)
      const status = msg.get(5)
      if (status !== 100) {
        const name = typeof status === 'number' ? (STATUS_NAMES[status] ?? String(status)) : 'no status'
        throw reservationRefused(relay.toString(), name)
      }
      const reservation = msg.get(3)
      const expire = reservation instanceof Uint8Array ? fields(reservation).get(1) : undefined
      if (typeof expire !== 'number') throw new Error('the answer carries no reservation')
      return { expiresAt: expire * 1000 }
    } finally {
      signal.removeEventListener('abort', onAbort)
      void s.close().catch(() => {})
    }
  } catch (err) {
    stream?.abort(err as Error)
    if (err instanceof WarrenError) throw err
    throw new WarrenError(
      'ERR_RELAY_UNREACHABLE',
      `renewing the reservation on relay ${relay} failed: ${(err as Error).message}`,
      { cause: err },
    )
  }
}

/**
 * Whether a Warren relay holds a reservation for this node (its `/warren/relay/1.0.0` answer, one round trip that also
 * shows the relay alive); undefined when the relay cannot say (no open connection to it, or identify did not list the
 * protocol: not a Warren relay). Throws when a Warren relay does not answer in time.
 */
export async function reservationHeld(
  libp2p: WarrenLibp2p,
  relay: PeerId,
  signal: AbortSignal,
): Promise<boolean | undefined> {
  if (relayConnection(libp2p, relay) === undefined) return undefined
  const peer = await libp2p.peerStore.get(relay).catch(() => undefined)
  if (peer?.protocols.includes(RELAY_INFO_PROTOCOL) !== true) return undefined
  const info = await queryRelayInfo(libp2p, relay, { signal })
  return info.reservation === undefined ? undefined : info.reservation !== null
}
