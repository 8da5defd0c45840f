/**
 * Noise's cipher (src/p2p/patches/noise-crypto.ts: libsodium for small messages, OpenSSL with a cached key for large
 * ones, WebAssembly for the smallest without libsodium) against the package's own implementation.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import {
  noiseCipher,
  noiseCipherKind,
  noiseCrypto,
  quietDecode,
  quietNoiseDecoder,
  SODIUM_BELOW,
} from '../../src/p2p/patches/noise-crypto.ts'
import { opensslAead } from '../../src/p2p/patches/openssl-aead.ts'
import { sodiumAead } from '../../src/p2p/patches/sodium.ts'

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

  it("libsodium and Node's own OpenSSL load here (a prebuilt sodium-native, Node's exported EVP functions)", () => {
    assert.ok(sodiumAead() !== undefined)
    assert.equal(noiseCipherKind, 'libsodium')
    assert.ok(opensslAead() !== undefined)
  })

  const none = () => undefined
  const ciphers = [
    ['noiseCrypto', noiseCrypto],
    ['libsodium and node:crypto', noiseCipher(sodiumAead(), none)],
    ['without libsodium or direct OpenSSL', noiseCipher(undefined, none)],
  ] as const
  const sizes = [0, 1, 100, 255, 256, 1200, 4000, SODIUM_BELOW - 17, SODIUM_BELOW - 16, SODIUM_BELOW, 65_519]
  for (const [name, cipher] of ciphers) {
    for (const size of sizes) {
      it(`${name}, ${size} bytes: same ciphertext as the default, each decrypts the other's, as bytes and as lists`, () => {
        const plain = randomBytes(size)
        const ours = bytes(cipher.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
        const theirs = bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
        assert.deepEqual(ours, theirs)
        assert.deepEqual(bytes(cipher.chaCha20Poly1305Encrypt(asList(plain), nonce, ad, k)), theirs)
        assert.deepEqual(bytes(cipher.chaCha20Poly1305Decrypt(Buffer.from(theirs), nonce, ad, k)), plain)
        assert.deepEqual(bytes(cipher.chaCha20Poly1305Decrypt(asList(Buffer.from(theirs)), nonce, ad, k)), plain)
        assert.deepEqual(bytes(defaultCrypto.chaCha20Poly1305Decrypt(Buffer.from(ours), nonce, ad, k)), plain)
      })
    }

    it(`${name}: opens a message in place when Noise gives its first bytes as the destination`, () => {
      for (const size of [0, 1, 63, 64, 65, 100, 1500, 4000, SODIUM_BELOW - 17, SODIUM_BELOW, 65_519]) {
        const plain = randomBytes(size)
        const sealed = Buffer.from(bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k)))
        const dst = sealed.subarray(0, size)
        const opened = cipher.chaCha20Poly1305Decrypt(sealed, nonce, ad, k, dst)
        assert.deepEqual(bytes(opened), plain, `${size} bytes`)
        // a separate destination gets the plaintext too, and the ciphertext stays as it was
        const again = Buffer.from(bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k)))
        const copy = Buffer.from(again)
        const out = new Uint8Array(size)
        assert.deepEqual(bytes(cipher.chaCha20Poly1305Decrypt(again, nonce, ad, k, out)), plain)
        assert.deepEqual(again, copy)
        // a message that came in pieces, with Noise's destination a copy of its first bytes
        const apart = new Uint8Array(size)
        assert.deepEqual(bytes(cipher.chaCha20Poly1305Decrypt(asList(again), nonce, ad, k, apart)), plain)
        assert.deepEqual(again, copy)
      }
    })

    it(`${name}: refuses a tampered message, a wrong key, a wrong nonce and a message shorter than its tag`, () => {
      const sodium = name !== 'without libsodium or direct OpenSSL'
      // what each implementation says: libsodium, OpenSSL, the package's WebAssembly
      const refusal = (size: number): RegExp =>
        sodium && size < SODIUM_BELOW
          ? /^could not verify data$/
          : !sodium && size < 256
            ? /^Invalid chacha20poly1305 decryption$/
            : /^Unsupported state or unable to authenticate data$/
      for (const size of [100, 4000, SODIUM_BELOW + 100]) {
        const sealed = bytes(cipher.chaCha20Poly1305Encrypt(randomBytes(size), nonce, ad, k))
        const tampered = Buffer.from(sealed)
        tampered[size >> 1]! ^= 1
        const error = { message: refusal(size) }
        assert.throws(() => cipher.chaCha20Poly1305Decrypt(tampered, nonce, ad, k), error)
        const inPlace = Buffer.from(tampered)
        assert.throws(() => cipher.chaCha20Poly1305Decrypt(inPlace, nonce, ad, k, inPlace.subarray(0, size)), error)
        assert.throws(() => cipher.chaCha20Poly1305Decrypt(Buffer.from(sealed), nonce, ad, randomBytes(32)), error)
        assert.throws(() => cipher.chaCha20Poly1305Decrypt(Buffer.from(sealed), Buffer.alloc(12), ad, k), error)
      }
      for (const size of [0, 15]) {
        assert.throws(
          () => cipher.chaCha20Poly1305Decrypt(randomBytes(size), nonce, ad, k),
          sodium
            ? { name: 'InvalidParametersError', message: `a Noise message of ${size} bytes is shorter than its tag` }
            : { message: refusal(size) },
        )
      }
    })
  }

  it("Noise's message reader decodes the same with Warren's reader, split at any point, and refuses the same", () => {
    // what Noise's encrypted stream holds: a LengthPrefixedDecoder over 2-byte big-endian lengths
    function uint16BEDecode(data: Uint8Array | Uint8ArrayList): number {
      if (data.length < 2) throw new RangeError('Could not decode int16BE')
      return data instanceof Uint8Array ? (data[0]! << 8) + data[1]! : data.getUint16(0)
    }
    const reader = (quiet: boolean, maxBufferSize?: number): LengthPrefixedDecoder => {
      const conn = {
        decoder: new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2, maxBufferSize }),
      }
      if (quiet) assert.ok(quietNoiseDecoder(conn))
      return conn.decoder
    }
    const messages = [0, 1, 300, 65_535, 2].map((n) => randomBytes(n))
    const wire = Buffer.concat(messages.flatMap((m) => [Buffer.from([m.byteLength >> 8, m.byteLength & 255]), m]))
    const sent = messages.filter((m) => m.byteLength > 0)
    for (const step of [1, 2, 3, 7777, wire.length]) {
      for (const quiet of [false, true]) {
        const decoder = reader(quiet)
        assert.equal((decoder as unknown as { decode: unknown }).decode === quietDecode, quiet)
        const out: Buffer[] = []
        for (let off = 0; off < wire.length; off += step) {
          for (const m of decoder.decode(wire.subarray(off, off + step))) out.push(Buffer.from(m.subarray()))
        }
        assert.deepEqual(out, sent, `chunks of ${step}, ${quiet ? "Warren's" : 'stock'} reader`)
        assert.equal((decoder as unknown as { buffer: Uint8ArrayList }).buffer.byteLength, 0)
      }
    }
    const refusals = [false, true].map((quiet) => {
      try {
        for (const _ of reader(quiet, 100).decode(randomBytes(101))) {
          // nothing: the chunk alone is over the limit
        }
        return 'no error'
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`
      }
    })
    assert.equal(refusals[0], 'InvalidParametersError: Buffer length limit exceeded - 101/100')
    assert.equal(refusals[1], refusals[0])
  })
})
