/**
 * Fuzzing the binary wire formats: the service protocol header (src/services/header.ts) and STUN
 * (src/stun/codec.ts, read by src/stun/client.ts). Encoders round-trip; any bytes decode to a valid value,
 * or FrameError (header) / undefined (STUN), never another exception; a frame split anywhere reads the same.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { escapeControl } from '../../src/log.ts'
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  FrameError,
  MAX_FRAME,
  MAX_REASON,
  Status,
  takeFrame,
} from '../../src/services/header.ts'
import {
  ATTR_XOR_MAPPED_ADDRESS,
  answerStun,
  decodeAddress,
  decodeStun,
  encodeAddress,
  encodeStun,
  mappedAddress,
  STUN_BINDING_REQUEST,
  STUN_BINDING_SUCCESS,
  STUN_HEADER_LENGTH,
} from '../../src/stun/codec.ts'
import { fuzz, parsesOrRefuses } from './fuzz-kit.ts'

const serviceName = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/)
const status = fc.constantFrom(...Object.values(Status))
/** A reason that fits in MAX_REASON bytes of UTF-8. */
const reason = fc
  .string({ unit: 'grapheme', maxLength: 200 })
  .filter((r) => Buffer.byteLength(escapeControl(r)) <= MAX_REASON)
/** Extensions with tags version 1 does not define (tag 1, the destination port, has its own shape). */
const tlvs = fc
  .array(
    fc.tuple(
      fc.integer({ min: 0, max: 255 }).filter((t) => t !== 1),
      fc.uint8Array({ maxLength: 40 }),
    ),
    { maxLength: 4 },
  )
  .map((list) =>
    Buffer.concat(
      list.map(([tag, v]) => {
        const len: number[] = []
        let n = v.length
        do {
          len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0))
          n >>>= 7
        } while (n > 0)
        return Buffer.from([tag, ...len, ...v])
      }),
    ),
  )

/** Re-frames a body with extensions appended (valid TLVs keep the frame valid). */
function withExtensions(frame: Uint8Array, ext: Uint8Array): Uint8Array {
  const body = takeFrame(new Uint8ArrayList(frame))!
  const all = Buffer.concat([body, ext])
  const len: number[] = []
  let n = all.length
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0))
    n >>>= 7
  } while (n > 0)
  return Buffer.concat([Buffer.from(len), all])
}

/** Feeds `bytes` to takeFrame in the given chunk sizes; returns the first frame (or undefined) and what is left. */
function takeInChunks(bytes: Uint8Array, sizes: number[]): { frame: Uint8Array | undefined; rest: number } {
  const buf = new Uint8ArrayList()
  let off = 0
  for (const s of [...sizes, bytes.length]) {
    buf.append(bytes.subarray(off, off + Math.max(1, s)))
    off += Math.max(1, s)
    const f = takeFrame(buf)
    if (f !== undefined) return { frame: f, rest: buf.byteLength + Math.max(0, bytes.length - off) }
    if (off >= bytes.length) break
  }
  return { frame: undefined, rest: buf.byteLength }
}

describe('fuzz: the service protocol header', () => {
  it('requests and responses round trip, with extensions and split anywhere', () => {
    fuzz(
      'header round trip',
      fc.tuple(serviceName, status, reason, tlvs, fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 12 })),
      ([service, st, why, ext, sizes]) => {
        const req = withExtensions(encodeRequest({ service }), ext)
        const got = takeInChunks(req, sizes)
        assert.equal(got.rest, 0)
        assert.deepEqual(decodeRequest(got.frame!), { version: 1, service })
        const res = withExtensions(encodeResponse({ status: st, reason: why }), ext)
        // the reason comes back as one line, its control characters escaped
        assert.deepEqual(decodeResponse(takeInChunks(res, sizes).frame!), { status: st, reason: escapeControl(why) })
      },
      { runs: 300 },
    )
  })

  it('a reason longer than 1024 bytes is cut, never breaks the frame', () => {
    fuzz(
      'header long reason',
      fc.tuple(status, fc.string({ unit: 'grapheme', minLength: 300, maxLength: 1500 })),
      ([st, why]) => {
        const res = decodeResponse(takeFrame(new Uint8ArrayList(encodeResponse({ status: st, reason: why })))!)
        assert.equal(res.status, st)
        assert.ok(Buffer.byteLength(res.reason) <= MAX_REASON + 3) // a cut character becomes U+FFFD
      },
      { runs: 50 },
    )
  })

  it('any bytes are a frame, more-needed, or FrameError; any body decodes or is FrameError', () => {
    const mutatedRequest = fc
      .tuple(serviceName, tlvs, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }))
      .map(([s, ext, edits]) => {
        const b = Buffer.from(withExtensions(encodeRequest({ service: s }), ext))
        for (const [at, v] of edits) b[at % b.length] = v
        return new Uint8Array(b)
      })
    fuzz(
      'header decode',
      fc.oneof(fc.uint8Array({ maxLength: 80 }), mutatedRequest, fc.uint8Array({ minLength: 4000, maxLength: 5000 })),
      (bytes) => {
        parsesOrRefuses(
          () => takeFrame(new Uint8ArrayList(bytes)),
          { errorClass: FrameError },
          (frame) => assert.ok(frame === undefined || (frame.length >= 1 && frame.length <= MAX_FRAME)),
        )
        parsesOrRefuses(
          () => decodeRequest(bytes),
          { errorClass: FrameError },
          (r) => assert.ok(r.service.length >= 1 && Buffer.byteLength(r.service) <= 63),
        )
        parsesOrRefuses(
          () => decodeResponse(bytes),
          { errorClass: FrameError },
          (r) => assert.ok(r.status >= 0 && r.status <= Status.BAD_REQUEST),
        )
      },
      { runs: 500 },
    )
  })
})

/** An IP address in the form STUN decoding prints it (IPv6 compressed as RFC 5952 says). */
const canon = (h: string): string => (h.includes(':') ? new URL(`http://[${h}]`).hostname.slice(1, -1) : h)

describe('fuzz: STUN', () => {
  const txid = fc.uint8Array({ minLength: 12, maxLength: 12 })
  const ip4 = fc.ipV4()
  const ip6 = fc.ipV6().filter((a) => !a.includes('.'))
  const addr = fc.record({ host: fc.oneof(ip4, ip6), port: fc.integer({ min: 0, max: 65535 }) })

  it('messages and (XOR-)MAPPED-ADDRESS values round trip', () => {
    fuzz(
      'stun round trip',
      fc.tuple(
        fc.integer({ min: 0, max: 0x3fff }),
        txid,
        fc.array(
          fc
            .tuple(fc.integer({ min: 0, max: 0x7fff }), fc.uint8Array({ maxLength: 40 }))
            .map(([type, value]) => ({ type, value })),
          { maxLength: 5 },
        ),
        fc.boolean(),
        addr,
        fc.boolean(),
      ),
      ([type, transactionId, attributes, fingerprint, a, xor]) => {
        const msg = decodeStun(encodeStun({ type, transactionId, attributes }, fingerprint))
        assert.ok(msg !== undefined)
        assert.equal(msg.type, type)
        assert.deepEqual(msg.transactionId, transactionId)
        assert.deepEqual(msg.attributes.slice(0, attributes.length), attributes)
        const back = decodeAddress(encodeAddress(a, transactionId, xor), transactionId, xor)
        assert.deepEqual(back, { host: canon(a.host), port: a.port })
      },
      { runs: 300 },
    )
  })

  it('any datagram decodes or is undefined; the responder answers requests with the sender address', () => {
    const mutated = fc
      .tuple(
        txid,
        fc.array(fc.record({ type: fc.integer({ min: 0, max: 0xffff }), value: fc.uint8Array({ maxLength: 12 }) }), {
          maxLength: 3,
        }),
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
      )
      .map(([transactionId, attributes, fp, edits]) => {
        const b = Buffer.from(encodeStun({ type: STUN_BINDING_REQUEST, transactionId, attributes }, fp))
        for (const [at, v] of edits) b[at % b.length] = v
        return new Uint8Array(b)
      })
    const from = fc.oneof(
      addr,
      ip4.map((h) => ({ host: `::ffff:${h}`, port: 3478 })),
    )
    fuzz(
      'stun decode',
      fc.tuple(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated), from),
      ([bytes, peer]) => {
        const msg = decodeStun(bytes)
        if (msg !== undefined) {
          assert.equal(msg.transactionId.length, 12)
          mappedAddress(msg) // undefined or an address, never a throw
        }
        const answer = answerStun(bytes, peer)
        if (answer === undefined) return
        const res = decodeStun(answer)
        assert.ok(res !== undefined && res.transactionId.length === 12)
        if (res.type === STUN_BINDING_SUCCESS) {
          const got = mappedAddress(res)
          assert.ok(res.attributes.some((a) => a.type === ATTR_XOR_MAPPED_ADDRESS))
          assert.equal(got?.port, peer.port)
          assert.equal(got?.host, canon(peer.host.replace(/^::ffff:(?=\d+\.)/, '')))
        }
        assert.ok(answer.length >= STUN_HEADER_LENGTH)
      },
      { runs: 500 },
    )
  })
})
