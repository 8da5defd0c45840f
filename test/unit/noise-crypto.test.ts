/** Noise's cipher with a cached OpenSSL key (src/node/noise-crypto.ts) against the package's own implementation. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { noiseCrypto } from '../../src/node/noise-crypto.ts'

const bytes = (x: Uint8Array | { subarray(): Uint8Array }): Buffer =>
  Buffer.from(x instanceof Uint8Array ? x : x.subarray())

/** What Noise hands the cipher (its own uint8arraylist version's type). */
type NoiseBytes = Parameters<typeof noiseCrypto.chaCha20Poly1305Encrypt>[0]

/** The same bytes as a list of three pieces. */
function asList(b: Uint8Array): NoiseBytes {
  const third = Math.floor(b.byteLength / 3)
  const list = new Uint8ArrayList(b.subarray(0, third), b.subarray(third, 2 * third), b.subarray(2 * third))
  return list as unknown as NoiseBytes
}

describe('noise crypto', () => {
  const k = randomBytes(32)
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32LE(7, 4)
  const ad = new Uint8Array(0)

  for (const size of [0, 1, 100, 255, 256, 1200, 4000, 65_519]) {
    it(`${size} bytes: same ciphertext as the default, each decrypts the other's, as bytes and as lists`, () => {
      const plain = randomBytes(size)
      const ours = bytes(noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
      const theirs = bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
      assert.deepEqual(ours, theirs)
      assert.deepEqual(bytes(noiseCrypto.chaCha20Poly1305Encrypt(asList(plain), nonce, ad, k)), theirs)
      assert.deepEqual(bytes(noiseCrypto.chaCha20Poly1305Decrypt(Buffer.from(theirs), nonce, ad, k)), plain)
      assert.deepEqual(bytes(noiseCrypto.chaCha20Poly1305Decrypt(asList(Buffer.from(theirs)), nonce, ad, k)), plain)
      assert.deepEqual(bytes(defaultCrypto.chaCha20Poly1305Decrypt(Buffer.from(ours), nonce, ad, k)), plain)
    })
  }

  it('refuses a tampered message, a wrong key and a wrong nonce', () => {
    for (const size of [100, 4000]) {
      const sealed = bytes(noiseCrypto.chaCha20Poly1305Encrypt(randomBytes(size), nonce, ad, k))
      const tampered = Buffer.from(sealed)
      tampered[size >> 1]! ^= 1
      assert.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(tampered, nonce, ad, k))
      assert.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(Buffer.from(sealed), nonce, ad, randomBytes(32)))
      assert.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(Buffer.from(sealed), Buffer.alloc(12), ad, k))
    }
  })
})
