/**
 * The Port Control Protocol (PCP, RFC 6887) messages Warren sends and reads: MAP requests (create, renew, delete a
 * mapping) and ANNOUNCE requests (learn the server's epoch), and their responses.
 *
 * PCP is hand-rolled because `@achingbrain/nat-port-mapper` (used for NAT-PMP and UPnP IGD) has no PCP client, and
 * PCP is what current routers (and miniupnpd, OpenWrt, pfSense) answer first; its 24-byte header and 36-byte MAP body
 * are small enough to encode here, with every field of an answer checked.
 *
 * ```
 * request header:  version=2 | R=0,opcode | reserved(2) | lifetime(4) | client IP (16, IPv4-mapped)
 * response header: version=2 | R=1,opcode | reserved | result | lifetime(4) | epoch(4) | reserved(12)
 * MAP body:        nonce(12) | protocol | reserved(3) | internal port(2) | external port(2) | external IP(16)
 * ```
 *
 * @packageDocumentation
 */
import { isIPv4 } from 'node:net'
import { WarrenError } from '../../errors.ts'

export const PCP_VERSION = 2
export const PCP_SERVER_PORT = 5351
export const OPCODE_ANNOUNCE = 0
export const OPCODE_MAP = 1
const HEADER = 24
const MAP_BODY = 36
/** Largest PCP message (RFC 6887 §7). */
export const PCP_MAX_MESSAGE = 1100

/** IANA protocol numbers of the transports Warren maps. */
export const PROTOCOL_NUMBER = { tcp: 6, udp: 17 } as const

/** Result codes (RFC 6887 §7.4), by number. */
export const PCP_RESULTS: Readonly<Record<number, string>> = {
  0: 'SUCCESS',
  1: 'UNSUPP_VERSION',
  2: 'NOT_AUTHORIZED',
  3: 'MALFORMED_REQUEST',
  4: 'UNSUPP_OPCODE',
  5: 'UNSUPP_OPTION',
  6: 'MALFORMED_OPTION',
  7: 'NETWORK_FAILURE',
  8: 'NO_RESOURCES',
  9: 'UNSUPP_PROTOCOL',
  10: 'USER_EX_QUOTA',
  11: 'CANNOT_PROVIDE_EXTERNAL',
  12: 'ADDRESS_MISMATCH',
  13: 'EXCESSIVE_REMOTE_PEERS',
}

export interface PcpMapRequest {
  nonce: Uint8Array
  transport: 'tcp' | 'udp'
  internalPort: number
  /** The external port asked for (0: any). */
  externalPort: number
  /** The client's own address (IPv4), as the gateway sees it. */
  clientIp: string
  /** 0 deletes the mapping. */
  lifetimeS: number
}

export interface PcpResponse {
  opcode: number
  result: number
  /** Lifetime granted (MAP), or how long an error holds, s. */
  lifetimeS: number
  /** Seconds since the server's state began: smaller than expected means it lost its mappings. */
  epoch: number
  /** MAP only. */
  map?: { nonce: Uint8Array; protocol: number; internalPort: number; externalPort: number; externalIp: string }
}

function malformed(what: string): WarrenError {
  return new WarrenError('ERR_PORT_MAPPING', `the gateway sent a malformed PCP answer: ${what}`, {
    hint: 'The router speaks PCP wrongly; turn PCP off with traversal.portMapping.pcp = false to use NAT-PMP or UPnP.',
    details: { protocol: 'pcp', reason: 'malformed' },
  })
}

function ipv4Mapped(ip: string): Uint8Array {
  if (!isIPv4(ip)) throw new RangeError(`PCP client address must be IPv4, not ${ip}`)
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out.set(ip.split('.').map(Number), 12)
  return out
}

function header(opcode: number, lifetimeS: number, clientIp: string, size: number): Buffer {
  const b = Buffer.alloc(size)
  b.writeUInt8(PCP_VERSION, 0)
  b.writeUInt8(opcode & 0x7f, 1)
  b.writeUInt32BE(lifetimeS, 4)
  b.set(ipv4Mapped(clientIp), 8)
  return b
}

/** A MAP request: create (lifetime > 0), renew (same nonce) or delete (lifetime 0) a mapping. */
export function encodeMapRequest(req: PcpMapRequest): Buffer {
  if (req.nonce.length !== 12) throw new RangeError('a PCP nonce is 12 bytes')
  for (const [name, port] of [
    ['internal', req.internalPort],
    ['external', req.externalPort],
  ] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`${name} port ${port} out of range`)
  }
  if (req.internalPort === 0) throw new RangeError('internal port 0 maps every port; name one')
  const b = header(OPCODE_MAP, req.lifetimeS, req.clientIp, HEADER + MAP_BODY)
  b.set(req.nonce, HEADER)
  b.writeUInt8(PROTOCOL_NUMBER[req.transport], HEADER + 12)
  b.writeUInt16BE(req.internalPort, HEADER + 16)
  b.writeUInt16BE(req.externalPort, HEADER + 18)
  // suggested external address: all zeros (IPv4-mapped ::ffff:0.0.0.0) lets the server choose
  b[HEADER + 30] = 0xff
  b[HEADER + 31] = 0xff
  return b
}

/** An ANNOUNCE request: the answer carries the server's epoch. */
export function encodeAnnounceRequest(clientIp: string): Buffer {
  return header(OPCODE_ANNOUNCE, 0, clientIp, HEADER)
}

function formatIp(b: Uint8Array): string {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff
  if (mapped) return [...b.subarray(12)].join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16))
  return groups.join(':')
}

/**
 * Parses a PCP response; throws ERR_PORT_MAPPING naming the field that is wrong. A NAT-PMP-only gateway answers a PCP
 * request with a version-0 message: that is reported as such (`details.reason: 'unsupported'`).
 */
export function decodeResponse(data: Uint8Array): PcpResponse {
  if (data.length < 2) throw malformed(`${data.length} bytes, shorter than a header`)
  const version = data[0]!
  if (version === 0) {
    throw new WarrenError('ERR_PORT_MAPPING', 'the gateway answered PCP with NAT-PMP (version 0): it has no PCP', {
      details: { protocol: 'pcp', reason: 'unsupported' },
    })
  }
  if (version !== PCP_VERSION) throw malformed(`version ${version}, expected ${PCP_VERSION}`)
  if (data.length < HEADER) throw malformed(`${data.length} bytes, shorter than the 24-byte header`)
  if (data.length > PCP_MAX_MESSAGE) throw malformed(`${data.length} bytes, longer than ${PCP_MAX_MESSAGE}`)
  if (data.length % 4 !== 0) throw malformed(`${data.length} bytes, not a multiple of 4`)
  if ((data[1]! & 0x80) === 0) throw malformed('the R bit is 0: a request, not a response')
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const opcode = data[1]! & 0x7f
  const res: PcpResponse = {
    opcode,
    result: data[3]!,
    lifetimeS: view.getUint32(4),
    epoch: view.getUint32(8),
  }
  if (opcode !== OPCODE_MAP) return res
  if (data.length < HEADER + MAP_BODY) {
    if (res.result !== 0) return res // an error answer may carry no body
    throw malformed(`MAP answer of ${data.length} bytes, shorter than ${HEADER + MAP_BODY}`)
  }
  const ip = data.subarray(HEADER + 20, HEADER + 36)
  res.map = {
    nonce: new Uint8Array(data.subarray(HEADER, HEADER + 12)),
    protocol: data[HEADER + 12]!,
    internalPort: view.getUint16(HEADER + 16),
    externalPort: view.getUint16(HEADER + 18),
    externalIp: formatIp(ip),
  }
  return res
}

/**
 * Checks a MAP answer against its request: same nonce, protocol and internal port, a success with a usable external
 * address and port. Throws ERR_PORT_MAPPING: `refused` for a result code, `malformed` for a mismatch.
 */
export function checkMapAnswer(req: PcpMapRequest, res: PcpResponse): NonNullable<PcpResponse['map']> {
  if (res.opcode !== OPCODE_MAP) throw malformed(`opcode ${res.opcode} in answer to MAP`)
  if (res.result !== 0) {
    const name = PCP_RESULTS[res.result] ?? `result ${res.result}`
    throw new WarrenError('ERR_PORT_MAPPING', `the gateway refused the PCP mapping: ${name}`, {
      hint:
        res.result === 2
          ? 'The router does not allow this host to map ports (its PCP/UPnP settings); direct paths fall back to punching and the relay.'
          : 'Direct paths fall back to punching and the relay.',
      details: { protocol: 'pcp', reason: 'refused', result: name },
    })
  }
  const m = res.map
  if (m === undefined) throw malformed('MAP answer without a body')
  if (!Buffer.from(m.nonce).equals(Buffer.from(req.nonce))) throw malformed('nonce differs from the request')
  if (m.protocol !== PROTOCOL_NUMBER[req.transport]) throw malformed(`protocol ${m.protocol}, asked ${req.transport}`)
  if (m.internalPort !== req.internalPort) throw malformed(`internal port ${m.internalPort}, asked ${req.internalPort}`)
  if (req.lifetimeS > 0) {
    if (m.externalPort === 0) throw malformed('external port 0 in a successful MAP answer')
    if (!isIPv4(m.externalIp) || m.externalIp === '0.0.0.0') throw malformed(`external address ${m.externalIp}`)
    if (res.lifetimeS === 0) throw malformed('lifetime 0 in answer to a MAP that asked for a mapping')
  }
  return m
}
