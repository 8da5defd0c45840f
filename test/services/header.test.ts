import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Uint8ArrayList } from 'uint8arraylist'
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  FrameError,
  MAX_REASON,
  Status,
  takeFrame,
} from '../../src/services/header.ts'

function roundTrip(bytes: Uint8Array): Uint8Array {
  const frame = takeFrame(new Uint8ArrayList(bytes))
  assert.ok(frame !== undefined)
  return frame
}

describe('service header codec', () => {
  it('round-trips a request, byte for byte as documented', () => {
    const bytes = encodeRequest({ service: 'web' })
    assert.deepEqual([...bytes], [5, 1, 3, 0x77, 0x65, 0x62])
    assert.deepEqual(decodeRequest(roundTrip(bytes)), { version: 1, service: 'web' })
  })

  it('round-trips every status with its reason', () => {
    for (const status of Object.values(Status)) {
      const res = decodeResponse(roundTrip(encodeResponse({ status, reason: `why ${status} ✓` })))
      assert.deepEqual(res, { status, reason: `why ${status} ✓` })
    }
  })

  it("escapes the control characters of the other node's reason, line breaks too: it is quoted as one line", () => {
    const res = decodeResponse(
      roundTrip(encodeResponse({ status: Status.NOT_AUTHORIZED, reason: 'no\n\x1b[2Jhint: fake' })),
    )
    assert.equal(res.reason, 'no\\n\\x1b[2Jhint: fake')
  })

  it('caps the reason at 1024 bytes', () => {
    const res = decodeResponse(roundTrip(encodeResponse({ status: Status.OK, reason: 'x'.repeat(5000) })))
    assert.equal(res.reason.length, MAX_REASON)
  })

  it('waits for a complete frame and leaves the bytes after it', () => {
    const bytes = encodeRequest({ service: 'db' })
    const buf = new Uint8ArrayList(bytes.subarray(0, 3))
    assert.equal(takeFrame(buf), undefined)
    buf.append(bytes.subarray(3), Uint8Array.of(9, 9))
    assert.deepEqual(decodeRequest(takeFrame(buf)!), { version: 1, service: 'db' })
    assert.deepEqual([...buf.subarray()], [9, 9])
  })

  it('skips unknown TLV extensions', () => {
    const body = Uint8Array.of(1, 2, 0x64, 0x62, 42, 3, 1, 2, 3)
    assert.deepEqual(decodeRequest(body), { version: 1, service: 'db' })
  })

  it('rejects malformed frames with a reason', () => {
    assert.throws(() => takeFrame(new Uint8ArrayList(Uint8Array.of(0))), /header length 0 is outside 1..4096/)
    assert.throws(() => takeFrame(new Uint8ArrayList(Uint8Array.of(0x81, 0x40))), /header length 8193 is outside/)
    assert.throws(() => decodeRequest(Uint8Array.of(1)), /request header is too short/)
    assert.throws(() => decodeRequest(Uint8Array.of(1, 9, 0x61)), /service name length is invalid/)
    assert.throws(() => decodeRequest(Uint8Array.of(1, 1, 0xff)), /not UTF-8/)
    assert.throws(() => decodeRequest(Uint8Array.of(1, 1, 0x61, 7, 5, 1)), /extension runs past the end/)
    assert.throws(() => decodeResponse(Uint8Array.of(9, 0)), /unknown status 9/)
    assert.throws(() => decodeResponse(Uint8Array.of(0, 5, 0x61)), /reason runs past the end/)
    assert.throws(() => encodeRequest({ service: '' }), FrameError)
    assert.throws(() => encodeRequest({ service: 'x'.repeat(64) }), /1-63 bytes, got 64/)
  })
})
