/**
 * The `/warren/service/1.0.0` header codec (docs/protocol.md).
 *
 * Request frame:  uvarint len | u8 version=1 | u8 name_len | name | TLV*
 * Response frame: uvarint len | u8 status | uvarint reason_len | reason (UTF-8) | TLV*
 * TLV: u8 tag | uvarint len | bytes — unknown tags are skipped. Request tag 1: the TCP port the client connected
 * to (u16 big-endian), for a host to tell ports apart; transparent mode sends it, the host logs it, and the service's
 * target still decides where the bytes go. A request without it is served as before. No response tags are defined.
 * Every malformed frame is a FrameError (never another exception): the host answers BAD_REQUEST, the dialer
 * ERR_PROTOCOL.
 */

import { varint } from 'multiformats'
import type { Uint8ArrayList } from 'uint8arraylist'
import { escapeControl } from '../log.ts'

export const SERVICE_PROTOCOL = '/warren/service/1.0.0'
export const HEADER_VERSION = 1
export const MAX_FRAME = 4096
export const MAX_REASON = 1024

export const Status = {
  OK: 0,
  UNKNOWN_SERVICE: 1,
  NOT_AUTHORIZED: 2,
  TARGET_UNREACHABLE: 3,
  OVERLOADED: 4,
  BAD_REQUEST: 5,
} as const
export type StatusCode = (typeof Status)[keyof typeof Status]

/** Request extension tag: the destination port the client used (u16 big-endian). */
export const TAG_DESTINATION_PORT = 1

export interface ServiceRequest {
  version: number
  service: string
  /** The TCP port the client connected to, when the dialer sent it (tag 1). */
  port?: number
}

export interface ServiceResponse {
  status: StatusCode
  reason: string
}

/** Thrown for bytes that are not a valid frame; the host answers BAD_REQUEST, the dialer ERR_PROTOCOL. */
export class FrameError extends Error {
  override name = 'FrameError'
}

function frame(body: Uint8Array): Uint8Array {
  const len = varint.encodingLength(body.length)
  const out = new Uint8Array(len + body.length)
  varint.encodeTo(body.length, out, 0)
  out.set(body, len)
  return out
}

export function encodeRequest(req: { service: string; version?: number; port?: number | undefined }): Uint8Array {
  const name = new TextEncoder().encode(req.service)
  if (name.length < 1 || name.length > 63) throw new FrameError(`service name must be 1-63 bytes, got ${name.length}`)
  const head = [req.version ?? HEADER_VERSION, name.length, ...name]
  if (req.port === undefined) return frame(Uint8Array.from(head))
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65_535) {
    throw new FrameError(`destination port must be 1-65535, got ${req.port}`)
  }
  return frame(Uint8Array.from([...head, TAG_DESTINATION_PORT, 2, req.port >> 8, req.port & 255]))
}

export function encodeResponse(res: ServiceResponse): Uint8Array {
  let reason = Buffer.from(res.reason, 'utf8')
  if (reason.length > MAX_REASON) reason = reason.subarray(0, MAX_REASON)
  const rl = varint.encodingLength(reason.length)
  const body = new Uint8Array(1 + rl + reason.length)
  body[0] = res.status
  varint.encodeTo(reason.length, body, 1)
  body.set(reason, 1 + rl)
  return frame(body)
}

/**
 * Takes one frame off the front of `buf` if it is complete. Returns undefined when more bytes are needed;
 * throws FrameError when the length is out of range.
 */
export function takeFrame(buf: Uint8ArrayList): Uint8Array | undefined {
  if (buf.byteLength === 0) return undefined
  const head = buf.subarray(0, Math.min(buf.byteLength, 3))
  let len: number
  let lenBytes: number
  try {
    ;[len, lenBytes] = varint.decode(head)
  } catch {
    if (head.length < 3) return undefined // varint not complete yet
    throw new FrameError('header length prefix is malformed')
  }
  if (len < 1 || len > MAX_FRAME) throw new FrameError(`header length ${len} is outside 1..${MAX_FRAME}`)
  if (buf.byteLength < lenBytes + len) return undefined
  const body = buf.subarray(lenBytes, lenBytes + len)
  buf.consume(lenBytes + len)
  return body
}

/** A uvarint at `off` that ends inside `body`, as [value, bytes]; FrameError naming `what` otherwise. */
function uvarintAt(body: Uint8Array, off: number, what: string): [number, number] {
  if (off >= body.length) throw new FrameError(`${what} is missing`)
  try {
    return varint.decode(body, off)
  } catch {
    throw new FrameError(`${what} is malformed`)
  }
}

/**
 * Checks the extensions from `off` to the end of `body` (each a tag, a uvarint length and that many bytes) and
 * calls `known` with the value of each.
 */
function skipTlvs(body: Uint8Array, off: number, known?: (tag: number, value: Uint8Array) => void): void {
  while (off < body.length) {
    const tag = body[off]!
    off += 1
    const [len, n] = uvarintAt(body, off, 'extension length')
    off += n + len
    if (off > body.length) throw new FrameError('extension runs past the end of the header')
    known?.(tag, body.subarray(off - len, off))
  }
}

export function decodeRequest(body: Uint8Array): ServiceRequest {
  if (body.length < 2) throw new FrameError('request header is too short')
  const version = body[0]!
  const nameLen = body[1]!
  if (nameLen < 1 || nameLen > 63 || 2 + nameLen > body.length) throw new FrameError('service name length is invalid')
  let service: string
  try {
    service = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(2, 2 + nameLen))
  } catch {
    throw new FrameError('service name is not UTF-8')
  }
  let port: number | undefined
  skipTlvs(body, 2 + nameLen, (tag, value) => {
    if (tag !== TAG_DESTINATION_PORT) return
    port = value.length === 2 ? (value[0]! << 8) | value[1]! : 0
    if (port === 0) throw new FrameError('destination port extension is malformed')
  })
  return port === undefined ? { version, service } : { version, service, port }
}

export function decodeResponse(body: Uint8Array): ServiceResponse {
  const status = body[0]
  if (status === undefined || status > Status.BAD_REQUEST) throw new FrameError(`unknown status ${status}`)
  let off = 1
  const [rl, n] = uvarintAt(body, off, 'reason length')
  off += n
  if (off + rl > body.length) throw new FrameError('reason runs past the end of the header')
  // the other node's words, quoted in errors and logs: one line, its control characters escaped, and no longer than
  // MAX_REASON bytes once escaped (a character cut at the end becomes U+FFFD)
  let reason = escapeControl(new TextDecoder().decode(body.subarray(off, off + rl)))
  if (reason.length > MAX_REASON / 3) {
    const bytes = new TextEncoder().encode(reason)
    if (bytes.length > MAX_REASON) reason = new TextDecoder().decode(bytes.subarray(0, MAX_REASON))
  }
  skipTlvs(body, off + rl)
  return { status: status as StatusCode, reason }
}
