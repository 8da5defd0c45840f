/**
 * Tickets: one copy-pasteable string naming a node and how to reach it.
 *
 * Text form: `warren` + base32 (RFC 4648, lowercase, no padding) of
 * `version (1 byte) | uvarint len | peer id bytes | uvarint count | (uvarint len | multiaddr bytes)* | checksum`,
 * where checksum is the first 4 bytes of SHA-256 over everything before it. See docs/protocol.md.
 *
 * @example
 * ```ts
 * const text = encodeTicket({ id, addrs: [multiaddr('/ip4/198.51.100.7/tcp/4781')] })
 * decodeTicket(text).id.equals(id) // true
 * ```
 */
import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { varint } from 'multiformats'
import { base32 } from 'multiformats/bases/base32'
import * as Digest from 'multiformats/hashes/digest'
import { WarrenError } from '../errors.ts'

export const TICKET_PREFIX = 'warren'
export const TICKET_VERSION = 1
const CHECKSUM_BYTES = 4
const MAX_ADDRS = 64

export interface Ticket {
  id: PeerId
  /** Direct and relay addresses, without the trailing /p2p/<id>. */
  addrs: Multiaddr[]
}

function checksum(body: Uint8Array): Uint8Array {
  return createHash('sha256').update(body).digest().subarray(0, CHECKSUM_BYTES)
}

function pushVarint(parts: Uint8Array[], n: number): void {
  parts.push(Uint8Array.from(varint.encodeTo(n, new Uint8Array(varint.encodingLength(n)))))
}

/** Encodes a ticket as text. */
export function encodeTicket(ticket: Ticket): string {
  const parts: Uint8Array[] = [Uint8Array.of(TICKET_VERSION)]
  const idBytes = ticket.id.toMultihash().bytes
  pushVarint(parts, idBytes.length)
  parts.push(idBytes)
  const addrs = ticket.addrs.slice(0, MAX_ADDRS)
  pushVarint(parts, addrs.length)
  for (const a of addrs) {
    pushVarint(parts, a.bytes.length)
    parts.push(a.bytes)
  }
  const body = Buffer.concat(parts)
  return TICKET_PREFIX + base32.baseEncode(Buffer.concat([body, checksum(body)]))
}

/** True when `text` has the ticket prefix (it may still be malformed). */
export function looksLikeTicket(text: string): boolean {
  return text.trim().toLowerCase().startsWith(TICKET_PREFIX)
}

function bad(message: string, hint: string): WarrenError {
  return new WarrenError('ERR_BAD_TICKET', message, { hint })
}

const RECOPY = 'Copy the whole ticket again from `warren id` on that node.'

/** Decodes a ticket, or throws ERR_BAD_TICKET saying whether it is truncated, mistyped or from a newer Warren. */
export function decodeTicket(text: string): Ticket {
  const trimmed = text.trim().toLowerCase()
  if (!trimmed.startsWith(TICKET_PREFIX)) {
    throw bad(`not a ticket: it must start with "${TICKET_PREFIX}"`, RECOPY)
  }
  const encoded = trimmed.slice(TICKET_PREFIX.length)
  const stray = /[^a-z2-7]/.exec(encoded)
  if (stray !== null) {
    throw bad(
      `ticket contains "${stray[0]}" at position ${TICKET_PREFIX.length + stray.index}, which base32 (a-z, 2-7) does not use`,
      `A character was mistyped. ${RECOPY}`,
    )
  }
  let raw: Uint8Array
  try {
    raw = base32.baseDecode(encoded)
  } catch {
    // 1, 3 or 6 characters past a multiple of 8 is no whole number of bytes: characters are missing; any other
    // length fails only on the spare bits of the last character, which a typo or a cut sets
    if ([1, 3, 6].includes(encoded.length % 8)) throw bad('ticket has an impossible length: it looks truncated', RECOPY)
    throw bad('ticket checksum does not match: it was truncated or mistyped', RECOPY)
  }
  if (raw.length < 1 + CHECKSUM_BYTES + 2) {
    throw bad(`ticket is too short (${raw.length} bytes): it looks truncated`, RECOPY)
  }
  const body = raw.subarray(0, raw.length - CHECKSUM_BYTES)
  const sum = raw.subarray(raw.length - CHECKSUM_BYTES)
  if (!Buffer.from(checksum(body)).equals(Buffer.from(sum))) {
    throw bad('ticket checksum does not match: it was truncated or mistyped', RECOPY)
  }
  if (body[0] !== TICKET_VERSION) {
    throw bad(
      `ticket version ${body[0]} is not supported (this Warren reads version ${TICKET_VERSION})`,
      'Upgrade Warren.',
    )
  }
  let off = 1
  const readVarint = (): number => {
    const [n, len] = varint.decode(body, off)
    off += len
    return n
  }
  const readBytes = (n: number): Uint8Array => {
    if (off + n > body.length) throw new Error('length runs past the end')
    const out = body.subarray(off, off + n)
    off += n
    return out
  }
  try {
    const id = peerIdFromMultihash(Digest.decode(readBytes(readVarint())))
    const count = readVarint()
    if (count > MAX_ADDRS) throw new Error(`${count} addresses is more than ${MAX_ADDRS}`)
    const addrs: Multiaddr[] = []
    for (let i = 0; i < count; i++) addrs.push(multiaddr(readBytes(readVarint())))
    if (off !== body.length) throw new Error('trailing bytes')
    if (id.type !== 'Ed25519') throw new Error(`peer id type ${id.type} is not Ed25519`)
    return { id, addrs }
  } catch (err) {
    throw bad(`ticket is malformed: ${(err as Error).message}`, RECOPY)
  }
}
