/** ChaCha20-Poly1305 through Node's own OpenSSL called directly (src/p2p/patches/openssl-aead.ts) against node:crypto. */
import assert from 'node:assert/strict'
import { createCipheriv, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { AeadAuthError, type OpensslAead, opensslAead } from '../../src/p2p/patches/openssl-aead.ts'

/** What node:crypto seals: ciphertext, then the tag. */
function nodeSeal(plain: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  c.setAAD(new Uint8Array(0), { plaintextLength: plain.byteLength })
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()])
}

/** `b` cut at `cuts` (offsets), as the pieces of a message. */
function cut(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let at = 0
  for (const c of [...cuts.filter((x) => x < b.byteLength), b.byteLength]) {
    out.push(b.subarray(at, c))
    at = c
  }
  return out
}

/** The oldest error on this thread's OpenSSL error queue (0: none). */
const errPeek = (() => {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
  return koffi.load(null as unknown as string).func('unsigned long ERR_peek_error(void)') as () => number
})()

describe('OpenSSL AEAD called directly', () => {
  const aead = opensslAead() as OpensslAead
  const key = randomBytes(32)
  const nonce = randomBytes(12)

  it("loads from Node's own binary", () => {
    assert.ok(aead !== undefined)
  })

  for (const size of [0, 1, 100, 16_384, 65_519]) {
    it(`${size} bytes: seals as node:crypto does from any pieces, and opens in place and apart`, () => {
      const plain = randomBytes(size)
      const expected = nodeSeal(plain, nonce, key)
      for (const cuts of [[], [12], [1, 2, 3], [size >> 1]]) {
        const sealed = Buffer.from(aead.seal(cut(plain, cuts), size, nonce, key))
        assert.deepEqual(sealed, expected, `pieces cut at ${cuts.join(',') || 'none'}`)
      }
      const apart = new Uint8Array(size)
      assert.deepEqual(
        Buffer.from(aead.open(cut(expected.subarray(0, size), [7]), expected.subarray(size), nonce, key, apart)),
        plain,
      )
      const inPlace = Buffer.from(expected)
      const text = inPlace.subarray(0, size)
      assert.equal(aead.open([text], inPlace.subarray(size), nonce, key, text), text)
      assert.deepEqual(Buffer.from(text), plain)
    })
  }

  it('refuses a tampered message, a wrong tag and a wrong key, and leaves no error on the OpenSSL queue', () => {
    const plain = randomBytes(20_000)
    const sealed = nodeSeal(plain, nonce, key)
    const refused = { name: 'AeadAuthError', message: 'Unsupported state or unable to authenticate data' }
    const tampered = Buffer.from(sealed)
    tampered[100]! ^= 1
    assert.throws(
      () => aead.open([tampered.subarray(0, 20_000)], tampered.subarray(20_000), nonce, key, new Uint8Array(20_000)),
      refused,
    )
    const badTag = Buffer.from(sealed)
    badTag[20_005]! ^= 1
    assert.throws(
      () => aead.open([badTag.subarray(0, 20_000)], badTag.subarray(20_000), nonce, key, new Uint8Array(20_000)),
      refused,
    )
    assert.throws(
      () =>
        aead.open(
          [sealed.subarray(0, 20_000)],
          sealed.subarray(20_000),
          nonce,
          randomBytes(32),
          new Uint8Array(20_000),
        ),
      refused,
    )
    assert.throws(
      () =>
        aead.open([sealed.subarray(0, 20_000)], sealed.subarray(20_000, 20_010), nonce, key, new Uint8Array(20_000)),
      refused,
    )
    assert.ok(new AeadAuthError() instanceof Error)
    assert.equal(errPeek(), 0)
    // and the context still works
    assert.deepEqual(Buffer.from(aead.seal([plain], plain.byteLength, nonce, key)), sealed)
  })

  it('refuses a key or a nonce of the wrong size before OpenSSL reads it', () => {
    const sealed = nodeSeal(randomBytes(100), nonce, key)
    assert.throws(() => aead.seal([randomBytes(10)], 10, nonce, randomBytes(16)), {
      name: 'RangeError',
      message: 'a ChaCha20-Poly1305 key is 32 bytes and its nonce 12 (16 and 12)',
    })
    assert.throws(
      () => aead.open([sealed.subarray(0, 100)], sealed.subarray(100), randomBytes(8), key, new Uint8Array(100)),
      {
        name: 'RangeError',
        message: 'a ChaCha20-Poly1305 key is 32 bytes and its nonce 12 (32 and 8)',
      },
    )
  })

  it('refuses pieces that do not add up to the destination', () => {
    const sealed = nodeSeal(randomBytes(1000), nonce, key)
    const tag = sealed.subarray(1000)
    assert.throws(() => aead.open([sealed.subarray(0, 1000)], tag, nonce, key, new Uint8Array(999)), {
      message: 'OpenSSL could not open a message of 999 bytes',
    })
    assert.throws(() => aead.open([sealed.subarray(0, 999)], tag, nonce, key, new Uint8Array(1000)), {
      message: 'OpenSSL could not open a message of 1000 bytes',
    })
    assert.throws(() => aead.seal([randomBytes(10)], 11, nonce, key), {
      message: 'OpenSSL could not seal a message of 11 bytes',
    })
    assert.equal(errPeek(), 0)
  })
})
