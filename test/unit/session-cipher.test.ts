/**
 * A Noise session's keys read out through Warren's cipher and used alone (src/p2p/patches/session-cipher.ts): the
 * messages that follow are the ones the session itself would have sealed and opened next. The end-to-end check,
 * against a node's own Noise, is test/relay/park.test.ts (every relayed byte through a woken connection).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { noiseCrypto, spyOnKeys } from '../../src/p2p/patches/noise-crypto.ts'
import { openWith, SessionCipher, sealWith, sessionKeys } from '../../src/p2p/patches/session-cipher.ts'

const ZEROLEN = new Uint8Array(0)

function nonce(n: number): Uint8Array {
  const b = new Uint8Array(12)
  new DataView(b.buffer).setUint32(4, n, true)
  return b
}

/** A session as Noise's CipherStates make it (key, counter from `start`, nonce at byte 4), for one direction each. */
function noiseLike(out: Uint8Array, into: Uint8Array, start: [number, number]) {
  let sent = start[0]
  let received = start[1]
  return {
    encrypt: (p: Uint8Array) => noiseCrypto.chaCha20Poly1305Encrypt(p, nonce(sent++), ZEROLEN, out),
    decrypt: (c: Uint8Array, dst?: Uint8Array) =>
      noiseCrypto.chaCha20Poly1305Decrypt(c, nonce(received++), ZEROLEN, into, dst),
  }
}

const bytes = (x: Uint8Array | { subarray(): Uint8Array }): Buffer =>
  Buffer.from(x instanceof Uint8Array ? x : x.subarray())

describe('Noise session keys kept alone', () => {
  it('the keys and counters read out continue the session: the same messages, sealed and opened, both ways', () => {
    const kA = randomBytes(32)
    const kB = randomBytes(32)
    const local = noiseLike(kA, kB, [41, 7])
    const state = sessionKeys(local)
    assert.ok(state !== undefined)
    assert.deepEqual(Buffer.from(state.keys), Buffer.concat([kA, kB]))
    // the counters the next messages take: reading them sent and received nothing
    assert.deepEqual({ sent: state.sent, received: state.received }, { sent: 41, received: 7 })
    const cipher = new SessionCipher(state)
    const remote = noiseLike(kB, kA, [7, 41])
    for (const size of [0, 12, 1_400, 20_000, 65_519]) {
      const m = randomBytes(size)
      const sealed = bytes(cipher.encrypt(m))
      assert.deepEqual(bytes(remote.decrypt(sealed)), m, `sent ${size} bytes`)
      const back = bytes(remote.encrypt(m))
      assert.deepEqual(bytes(cipher.decrypt(back)), m, `received ${size} bytes`)
    }
    // the parked link's one-message helpers agree with the same counters
    const ping = randomBytes(12)
    assert.deepEqual(bytes(remote.decrypt(sealWith(kA, 46, ping))), ping)
    assert.deepEqual(bytes(openWith(kB, 12, bytes(remote.encrypt(ping)))), ping)
  })

  it('a message that does not open throws and is not counted; the counter limit is Noise’s, with its words', () => {
    const k = randomBytes(32)
    const cipher = new SessionCipher({ keys: Buffer.concat([k, k]), sent: 0, received: 0 })
    const sealed = bytes(cipher.encrypt(Buffer.from('hello')))
    const bad = Buffer.from(sealed)
    bad[0]! ^= 1
    assert.throws(() => cipher.decrypt(bad), { message: 'could not verify data' })
    assert.deepEqual(bytes(cipher.decrypt(sealed)), Buffer.from('hello'), 'counter 0 still expected')
    const last = new SessionCipher({ keys: Buffer.concat([k, k]), sent: 0x1_0000_0000, received: 0 })
    assert.throws(() => last.encrypt(Buffer.from('x')), {
      message: 'Cipherstate has reached maximum n, a new handshake must be performed',
    })
    assert.throws(() => sealWith(k, 0x1_0000_0000, Buffer.from('x')), {
      message: 'Cipherstate has reached maximum n, a new handshake must be performed',
    })
  })

  it('a session on another cipher is not read (the spy is not called), and the cipher works after a spy', () => {
    assert.equal(
      spyOnKeys(
        () => 0,
        () => {},
      ),
      false,
    )
    assert.equal(sessionKeys({ encrypt: () => new Uint8Array(16), decrypt: () => new Uint8Array(0) }), undefined)
    const k = randomBytes(32)
    const m = randomBytes(100)
    const sealed = noiseCrypto.chaCha20Poly1305Encrypt(m, nonce(0), ZEROLEN, k)
    assert.equal(bytes(sealed).byteLength, 116)
  })
})
