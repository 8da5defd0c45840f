/**
 * STUN (RFC 5389) binding: the message codec and a responder that tells each sender the public address and port its
 * datagram came from (XOR-MAPPED-ADDRESS). A relay runs the responder on a UDP port so that nodes learn their public UDP
 * mapping; {@link ./client.ts} asks it from the very socket a direct path will use.
 *
 * Only the Binding method is implemented. Datagrams that are not STUN requests are ignored (never answered), so the
 * responder can share a socket with other traffic.
 *
 * @example
 * ```ts
 * const stun = await startStunResponder({ host: '0.0.0.0', port: 3478 })
 * // … later
 * await stun.close()
 * ```
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { isIPv4, isIPv6 } from 'node:net'
import { crc32 } from 'node:zlib'
import { WarrenError } from '../errors.ts'

export const STUN_MAGIC_COOKIE = 0x2112a442
export const STUN_HEADER_LENGTH = 20
export const STUN_BINDING_REQUEST = 0x0001
export const STUN_BINDING_SUCCESS = 0x0101
export const STUN_BINDING_ERROR = 0x0111
export const ATTR_MAPPED_ADDRESS = 0x0001
export const ATTR_ERROR_CODE = 0x0009
export const ATTR_UNKNOWN_ATTRIBUTES = 0x000a
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020
export const ATTR_SOFTWARE = 0x8022
export const ATTR_FINGERPRINT = 0x8028
const FINGERPRINT_XOR = 0x5354554e
const SOFTWARE = 'warren'

export interface StunAddress {
  host: string
  port: number
}

export interface StunAttribute {
  type: number
  value: Uint8Array
}

export interface StunMessage {
  type: number
  /** 12 bytes. */
  transactionId: Uint8Array
  attributes: StunAttribute[]
}

/** True when `data` has the shape of a STUN message (leading zero bits, magic cookie, consistent length). */
export function isStunMessage(data: Uint8Array): boolean {
  if (data.length < STUN_HEADER_LENGTH || (data[0]! & 0xc0) !== 0) return false
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const length = view.getUint16(2)
  return view.getUint32(4) === STUN_MAGIC_COOKIE && length % 4 === 0 && length + STUN_HEADER_LENGTH === data.length
}

/** Decodes a STUN message; returns undefined for anything malformed (including a wrong FINGERPRINT). */
export function decodeStun(data: Uint8Array): StunMessage | undefined {
  if (!isStunMessage(data)) return undefined
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const attributes: StunAttribute[] = []
  let off = STUN_HEADER_LENGTH
  while (off < data.length) {
    if (off + 4 > data.length) return undefined
    const type = view.getUint16(off)
    const len = view.getUint16(off + 2)
    if (off + 4 + len > data.length) return undefined
    if (type === ATTR_FINGERPRINT) {
      if (len !== 4 || off + 8 !== data.length) return undefined
      if ((crc32(data.subarray(0, off)) ^ FINGERPRINT_XOR) >>> 0 !== view.getUint32(off + 4)) return undefined
    }
    attributes.push({ type, value: new Uint8Array(data.subarray(off + 4, off + 4 + len)) })
    off += 4 + len + ((4 - (len % 4)) % 4)
  }
  return { type: view.getUint16(0), transactionId: new Uint8Array(data.subarray(8, 20)), attributes }
}

/** Encodes a message; `fingerprint` appends a FINGERPRINT attribute (RFC 5389 §15.5). */
export function encodeStun(msg: StunMessage, fingerprint = true): Uint8Array {
  if (msg.transactionId.length !== 12) throw new RangeError('a STUN transaction id is 12 bytes')
  const bodyLength = msg.attributes.reduce((n, a) => n + 4 + a.value.length + ((4 - (a.value.length % 4)) % 4), 0)
  const total = STUN_HEADER_LENGTH + bodyLength + (fingerprint ? 8 : 0)
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  view.setUint16(0, msg.type)
  view.setUint16(2, total - STUN_HEADER_LENGTH)
  view.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(msg.transactionId, 8)
  let off = STUN_HEADER_LENGTH
  for (const a of msg.attributes) {
    view.setUint16(off, a.type)
    view.setUint16(off + 2, a.value.length)
    out.set(a.value, off + 4)
    off += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4)
  }
  if (fingerprint) {
    view.setUint16(off, ATTR_FINGERPRINT)
    view.setUint16(off + 2, 4)
    view.setUint32(off + 4, (crc32(out.subarray(0, off)) ^ FINGERPRINT_XOR) >>> 0)
  }
  return out
}

function ipv6Bytes(host: string): Uint8Array {
  const [head = '', tail] = host.split('::') as [string, string | undefined]
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => Number.parseInt(h, 16)))
  const left = parse(head)
  const right = tail === undefined ? [] : parse(tail)
  const groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8
    out[i * 2 + 1] = g & 0xff
  })
  return out
}

function ipBytes(host: string): Uint8Array {
  if (isIPv4(host)) return Uint8Array.from(host.split('.').map(Number))
  if (isIPv6(host) && !host.includes('.')) return ipv6Bytes(host)
  throw new RangeError(`'${host}' is not an IPv4 or plain IPv6 address`)
}

function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.')
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!)
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
  }
  const hex = (g: number[]): string => g.map((n) => n.toString(16)).join(':')
  return best < 0 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`
}

/** Encodes an (XOR-)MAPPED-ADDRESS value. */
export function encodeAddress(addr: StunAddress, transactionId: Uint8Array, xor: boolean): Uint8Array {
  const ip = ipBytes(addr.host)
  const out = new Uint8Array(4 + ip.length)
  const view = new DataView(out.buffer)
  out[1] = ip.length === 4 ? 0x01 : 0x02
  const mask = new Uint8Array(16)
  new DataView(mask.buffer).setUint32(0, STUN_MAGIC_COOKIE)
  mask.set(transactionId, 4)
  view.setUint16(2, xor ? addr.port ^ (STUN_MAGIC_COOKIE >>> 16) : addr.port)
  for (let i = 0; i < ip.length; i++) out[4 + i] = xor ? ip[i]! ^ mask[i]! : ip[i]!
  return out
}

/** Decodes an (XOR-)MAPPED-ADDRESS value; undefined when malformed. */
export function decodeAddress(value: Uint8Array, transactionId: Uint8Array, xor: boolean): StunAddress | undefined {
  const family = value[1]
  const len = family === 0x01 ? 4 : family === 0x02 ? 16 : 0
  if (len === 0 || value.length !== 4 + len) return undefined
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  const mask = new Uint8Array(16)
  new DataView(mask.buffer).setUint32(0, STUN_MAGIC_COOKIE)
  mask.set(transactionId, 4)
  const ip = new Uint8Array(value.subarray(4)).map((b, i) => (xor ? b ^ mask[i]! : b))
  const port = xor ? view.getUint16(2) ^ (STUN_MAGIC_COOKIE >>> 16) : view.getUint16(2)
  return { host: formatIp(ip), port }
}

/** A fresh Binding request with a random transaction id. */
export function bindingRequest(): StunMessage {
  return { type: STUN_BINDING_REQUEST, transactionId: new Uint8Array(randomBytes(12)), attributes: [] }
}

/** The mapped address in a Binding success response (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). */
export function mappedAddress(msg: StunMessage): StunAddress | undefined {
  const xor = msg.attributes.find((a) => a.type === ATTR_XOR_MAPPED_ADDRESS)
  if (xor !== undefined) return decodeAddress(xor.value, msg.transactionId, true)
  const plain = msg.attributes.find((a) => a.type === ATTR_MAPPED_ADDRESS)
  return plain === undefined ? undefined : decodeAddress(plain.value, msg.transactionId, false)
}

const KNOWN_REQUIRED = new Set<number>()

/**
 * The answer to one datagram, or undefined when it must be ignored (not STUN, not a Binding request).
 * A request with comprehension-required attributes we do not know gets a 420 error (RFC 5389 §7.3.1).
 */
export function answerStun(data: Uint8Array, peer: StunAddress): Uint8Array | undefined {
  // a dual-stack socket (host "::") reports IPv4 clients as ::ffff:a.b.c.d: they are told their IPv4 address
  const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(peer.host)?.[1]
  const from = v4 !== undefined && isIPv4(v4) ? { host: v4, port: peer.port } : peer
  const msg = decodeStun(data)
  if (msg === undefined || msg.type !== STUN_BINDING_REQUEST) return undefined
  const unknown = msg.attributes.map((a) => a.type).filter((t) => t < 0x8000 && !KNOWN_REQUIRED.has(t))
  if (unknown.length > 0) {
    const err = new Uint8Array(4 + 'Unknown Attribute'.length)
    err[2] = 4
    err[3] = 20
    err.set(new TextEncoder().encode('Unknown Attribute'), 4)
    const list = new Uint8Array(unknown.length * 2)
    const listView = new DataView(list.buffer)
    for (const [i, t] of unknown.entries()) listView.setUint16(i * 2, t)
    return encodeStun({
      type: STUN_BINDING_ERROR,
      transactionId: msg.transactionId,
      attributes: [
        { type: ATTR_ERROR_CODE, value: err },
        { type: ATTR_UNKNOWN_ATTRIBUTES, value: list },
      ],
    })
  }
  return encodeStun({
    type: STUN_BINDING_SUCCESS,
    transactionId: msg.transactionId,
    attributes: [
      { type: ATTR_XOR_MAPPED_ADDRESS, value: encodeAddress(from, msg.transactionId, true) },
      { type: ATTR_MAPPED_ADDRESS, value: encodeAddress(from, msg.transactionId, false) },
      { type: ATTR_SOFTWARE, value: new TextEncoder().encode(SOFTWARE) },
    ],
  })
}

export interface StunResponderOptions {
  /** Address to bind, default '0.0.0.0'. */
  host?: string
  /** UDP port, default 3478; 0 picks a free one. */
  port?: number
}

export interface StunResponder {
  /** Where the responder listens. */
  readonly address: StunAddress
  /** Number of Binding requests answered. */
  readonly answered: number
  close(): Promise<void>
}

/** Starts a STUN Binding responder on its own UDP socket. Rejects with ERR_LISTEN_FAILED if the port cannot be bound. */
export async function startStunResponder(options: StunResponderOptions = {}): Promise<StunResponder> {
  const host = options.host ?? '0.0.0.0'
  const port = options.port ?? 3478
  const socket: Socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
  let answered = 0
  socket.on('message', (data, rinfo) => {
    let reply: Uint8Array | undefined
    try {
      reply = answerStun(data, { host: rinfo.address, port: rinfo.port })
    } catch {
      return // an address it cannot encode: no answer, and never an exception out of the socket's handler
    }
    if (reply === undefined) return
    answered++
    socket.send(reply, rinfo.port, rinfo.address)
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => {
      reject(
        new WarrenError('ERR_LISTEN_FAILED', `the STUN responder could not bind UDP ${host}:${port}: ${err.message}`, {
          hint: 'Pick another --stun-port or stop the process that holds this UDP port.',
          cause: err,
        }),
      )
    })
    socket.bind(port, host, () => resolve())
  })
  socket.on('error', () => undefined)
  const bound = socket.address()
  return {
    address: { host: bound.address, port: bound.port },
    get answered() {
      return answered
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}
