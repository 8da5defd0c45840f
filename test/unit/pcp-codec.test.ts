/**
 * The PCP codec (RFC 6887, src/traversal/portmap/pcp-codec.ts): MAP and ANNOUNCE requests byte for byte, responses
 * parsed field by field, and every malformed or refusing answer rejected with its exact error.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { epochReset, isAnswerTo } from '../../src/traversal/portmap/pcp.ts'
import {
  checkMapAnswer,
  decodeResponse,
  encodeAnnounceRequest,
  encodeMapRequest,
  type PcpMapRequest,
} from '../../src/traversal/portmap/pcp-codec.ts'

const NONCE = Uint8Array.from({ length: 12 }, (_, i) => i + 1)
const REQ: PcpMapRequest = {
  nonce: NONCE,
  transport: 'tcp',
  internalPort: 4781,
  externalPort: 4781,
  clientIp: '192.168.1.20',
  lifetimeS: 7200,
}

/** A MAP response as a server would send it; `patch` edits the bytes. */
function mapResponse(patch: (b: Buffer) => void = () => {}): Buffer {
  const b = Buffer.alloc(60)
  b[0] = 2
  b[1] = 0x81
  b[3] = 0 // SUCCESS
  b.writeUInt32BE(7200, 4)
  b.writeUInt32BE(1234, 8)
  b.set(NONCE, 24)
  b[36] = 6
  b.writeUInt16BE(4781, 40)
  b.writeUInt16BE(40001, 42)
  b[54] = 0xff
  b[55] = 0xff
  b.set([203, 0, 113, 7], 56)
  patch(b)
  return b
}

function rejectsWith(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWarrenError(err, 'ERR_PORT_MAPPING'), `a WarrenError ERR_PORT_MAPPING, got ${String(err)}`)
    assert.equal((err as Error).message, message)
    return true
  })
}

describe('PCP requests', () => {
  it('encodes a MAP request field by field', () => {
    const b = encodeMapRequest(REQ)
    assert.equal(b.length, 60)
    assert.equal(b.toString('hex', 0, 8), '0201000000001c20')
    assert.equal(b.toString('hex', 8, 24), '00000000000000000000ffffc0a80114')
    assert.deepEqual([...b.subarray(24, 36)], [...NONCE])
    assert.equal(b[36], 6)
    assert.equal(b.readUInt16BE(40), 4781)
    assert.equal(b.readUInt16BE(42), 4781)
    assert.equal(b.toString('hex', 44, 60), '00000000000000000000ffff00000000')
  })

  it('encodes UDP, a delete (lifetime 0) and an ANNOUNCE', () => {
    const del = encodeMapRequest({ ...REQ, transport: 'udp', lifetimeS: 0 })
    assert.equal(del[36], 17)
    assert.equal(del.readUInt32BE(4), 0)
    const ann = encodeAnnounceRequest('10.0.0.2')
    assert.equal(ann.toString('hex'), '020000000000000000000000000000000000ffff0a000002')
  })

  it('refuses bad requests before sending them', () => {
    assert.throws(() => encodeMapRequest({ ...REQ, nonce: new Uint8Array(11) }), /a PCP nonce is 12 bytes/)
    assert.throws(() => encodeMapRequest({ ...REQ, internalPort: 70000 }), /internal port 70000 out of range/)
    assert.throws(() => encodeMapRequest({ ...REQ, internalPort: 0 }), /internal port 0 maps every port/)
    assert.throws(() => encodeMapRequest({ ...REQ, clientIp: '::1' }), /PCP client address must be IPv4, not ::1/)
  })
})

describe('PCP responses', () => {
  it('decodes a MAP answer and checks it against its request', () => {
    const res = decodeResponse(mapResponse())
    assert.equal(res.opcode, 1)
    assert.equal(res.result, 0)
    assert.equal(res.lifetimeS, 7200)
    assert.equal(res.epoch, 1234)
    const m = checkMapAnswer(REQ, res)
    assert.equal(m.externalIp, '203.0.113.7')
    assert.equal(m.externalPort, 40001)
    assert.ok(isAnswerTo(REQ, res))
  })

  it('tells a NAT-PMP-only gateway apart', () => {
    rejectsWith(
      () => decodeResponse(Buffer.from('0081000100000000', 'hex')),
      'the gateway answered PCP with NAT-PMP (version 0): it has no PCP',
    )
  })

  it('rejects malformed answers with the field that is wrong', () => {
    const cases: Array<[Buffer, string]> = [
      [Buffer.alloc(1), 'the gateway sent a malformed PCP answer: 1 bytes, shorter than a header'],
      [mapResponse((b) => (b[0] = 3)), 'the gateway sent a malformed PCP answer: version 3, expected 2'],
      [
        mapResponse().subarray(0, 20),
        'the gateway sent a malformed PCP answer: 20 bytes, shorter than the 24-byte header',
      ],
      [
        Buffer.concat([mapResponse(), Buffer.alloc(2)]),
        'the gateway sent a malformed PCP answer: 62 bytes, not a multiple of 4',
      ],
      [
        mapResponse((b) => (b[1] = 0x01)),
        'the gateway sent a malformed PCP answer: the R bit is 0: a request, not a response',
      ],
      [
        mapResponse().subarray(0, 40),
        'the gateway sent a malformed PCP answer: MAP answer of 40 bytes, shorter than 60',
      ],
      [Buffer.alloc(1104, 2), 'the gateway sent a malformed PCP answer: 1104 bytes, longer than 1100'],
    ]
    for (const [bytes, message] of cases) rejectsWith(() => decodeResponse(bytes), message)
  })

  it('rejects answers that do not match the request', () => {
    const check =
      (patch: (b: Buffer) => void): (() => unknown) =>
      () =>
        checkMapAnswer(REQ, decodeResponse(mapResponse(patch)))
    rejectsWith(
      check((b) => (b[24] = 99)),
      'the gateway sent a malformed PCP answer: nonce differs from the request',
    )
    rejectsWith(
      check((b) => (b[36] = 17)),
      'the gateway sent a malformed PCP answer: protocol 17, asked tcp',
    )
    rejectsWith(
      check((b) => b.writeUInt16BE(1, 40)),
      'the gateway sent a malformed PCP answer: internal port 1, asked 4781',
    )
    rejectsWith(
      check((b) => b.writeUInt16BE(0, 42)),
      'the gateway sent a malformed PCP answer: external port 0 in a successful MAP answer',
    )
    rejectsWith(
      check((b) => b.set([0, 0, 0, 0], 56)),
      'the gateway sent a malformed PCP answer: external address 0.0.0.0',
    )
    rejectsWith(
      check((b) => b.writeUInt32BE(0, 4)),
      'the gateway sent a malformed PCP answer: lifetime 0 in answer to a MAP that asked for a mapping',
    )
    rejectsWith(
      () => checkMapAnswer(REQ, decodeResponse(encodeAnnounceRequest('10.0.0.2').fill(0x80, 1, 2))),
      'the gateway sent a malformed PCP answer: opcode 0 in answer to MAP',
    )
  })

  it('reports a refusal with the result code, with or without a body', () => {
    const refused = decodeResponse(mapResponse((b) => (b[3] = 2)))
    assert.ok(isAnswerTo(REQ, refused))
    rejectsWith(() => checkMapAnswer(REQ, refused), 'the gateway refused the PCP mapping: NOT_AUTHORIZED')
    const bare = decodeResponse(mapResponse((b) => (b[3] = 8)).subarray(0, 24))
    assert.ok(isAnswerTo(REQ, bare))
    rejectsWith(() => checkMapAnswer(REQ, bare), 'the gateway refused the PCP mapping: NO_RESOURCES')
    const err = (() => {
      try {
        checkMapAnswer(REQ, refused)
      } catch (e) {
        return e as { details?: unknown }
      }
    })()
    assert.deepEqual(err?.details, { protocol: 'pcp', reason: 'refused', result: 'NOT_AUTHORIZED' })
  })

  it('ignores answers to another request', () => {
    const other = decodeResponse(mapResponse((b) => (b[24] = 99)))
    assert.equal(isAnswerTo(REQ, other), false)
  })
})

describe('PCP epoch', () => {
  it('notices a server that lost its state', () => {
    const prev = { epoch: 1000, at: 0 }
    assert.equal(epochReset(prev, 1010, 10_000), false, 'ten seconds on both clocks')
    assert.equal(epochReset(prev, 3, 10_000), true, 'the epoch went back: restarted')
    assert.equal(epochReset(prev, 1001, 60_000), true, 'the server counted 1 s while 60 s passed')
    assert.equal(epochReset(prev, 1000, 1_000), false, 'within the 2 s slack')
  })
})
