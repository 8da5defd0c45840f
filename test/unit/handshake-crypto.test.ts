/**
 * src/p2p/patches/handshake-crypto.ts against the packages' own math: the same X25519 keys and secrets as Noise's
 * OpenSSL and pure-JavaScript crypto, the same hashes and HKDF output, the same Ed25519 signatures and verdicts as
 * `@libp2p/crypto`'s keys before the patch, and the same refusals.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { defaultCrypto, pureJsCrypto } from '@chainsafe/libp2p-noise/crypto'
import { generateKeyPair, privateKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import {
  handshakeCrypto,
  sodiumEd25519,
  sodiumEd25519Methods,
  sodiumKeyOperations,
} from '../../src/p2p/patches/handshake-crypto.ts'
import { sodiumPublicKey } from '../../src/p2p/patches/sodium.ts'

const sodium = sodiumPublicKey()
assert.ok(sodium !== undefined, 'sodium-native loads on this machine')
/** Noise's signatures take its own copy's Uint8ArrayList type; the calls here take either. */
const fast = handshakeCrypto(sodium) as unknown as {
  generateX25519KeyPair(): { publicKey: Uint8Array; privateKey: Uint8Array }
  generateX25519KeyPairFromSeed(seed: Uint8Array): { publicKey: Uint8Array; privateKey: Uint8Array }
  generateX25519SharedKey(priv: Uint8Array | Uint8ArrayList, pub: Uint8Array | Uint8ArrayList): Uint8Array
  hashSHA256(data: Uint8Array | Uint8ArrayList): Uint8Array
  getHKDF(ck: Uint8Array, ikm: Uint8Array): Uint8Array[]
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })

/** u-coordinates of small order on Curve25519: X25519 with any of them gives the all-zero secret. */
const SMALL_ORDER = [
  new Uint8Array(32),
  Uint8Array.from([1, ...new Array<number>(31).fill(0)]),
  Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
]

describe('X25519, SHA-256 and HKDF for Noise', () => {
  it('a key pair from a seed has the public key of both package implementations', () => {
    fc.assert(
      fc.property(bytes(32), (seed) => {
        const pub = hex(fast.generateX25519KeyPairFromSeed(seed).publicKey)
        assert.equal(pub, hex(defaultCrypto.generateX25519KeyPairFromSeed(seed).publicKey))
        assert.equal(pub, hex(pureJsCrypto.generateX25519KeyPairFromSeed(seed).publicKey))
      }),
      { numRuns: 200 },
    )
  })

  it('a new key pair is random, and its public key is that of its private key', () => {
    const a = fast.generateX25519KeyPair()
    const b = fast.generateX25519KeyPair()
    assert.notEqual(hex(a.privateKey), hex(b.privateKey))
    for (const k of [a, b]) {
      assert.equal(k.privateKey.byteLength, 32)
      assert.equal(hex(k.publicKey), hex(defaultCrypto.generateX25519KeyPairFromSeed(k.privateKey).publicKey))
    }
  })

  it("an exchange gives OpenSSL's secret, from arrays and from lists", () => {
    fc.assert(
      fc.property(bytes(32), bytes(32), (x, y) => {
        const peer = defaultCrypto.generateX25519KeyPairFromSeed(y).publicKey
        const expected = hex(defaultCrypto.generateX25519SharedKey(x, peer))
        assert.equal(hex(fast.generateX25519SharedKey(x, peer)), expected)
        const list = (b: Uint8Array) => new Uint8ArrayList(b.subarray(0, 7), b.subarray(7))
        assert.equal(hex(fast.generateX25519SharedKey(list(x), list(peer))), expected)
      }),
      { numRuns: 200 },
    )
  })

  it('a remote key of small order is refused, as OpenSSL refuses it', () => {
    const mine = fast.generateX25519KeyPair().privateKey
    for (const point of SMALL_ORDER) {
      assert.throws(() => defaultCrypto.generateX25519SharedKey(mine, point))
      assert.throws(() => fast.generateX25519SharedKey(mine, point), {
        name: 'InvalidCryptoExchangeError',
        message: 'the X25519 exchange gave no secret: the remote key is of small order',
      })
    }
  })

  it("SHA-256 is node:crypto's, of arrays and of lists", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (data, cut) => {
        const expected = createHash('sha256').update(data).digest('hex')
        assert.equal(hex(fast.hashSHA256(data)), expected)
        const at = Math.min(cut, data.byteLength)
        assert.equal(hex(fast.hashSHA256(new Uint8ArrayList(data.subarray(0, at), data.subarray(at)))), expected)
      }),
      { numRuns: 300 },
    )
  })

  it("HKDF gives the package's three keys", () => {
    fc.assert(
      fc.property(bytes(32), fc.uint8Array({ maxLength: 64 }), (ck, ikm) => {
        const expected = pureJsCrypto.getHKDF(ck, ikm).map(hex)
        assert.deepEqual(fast.getHKDF(ck, ikm).map(hex), expected)
      }),
      { numRuns: 300 },
    )
  })

  it('a chaining key longer than a SHA-256 block is refused', () => {
    assert.throws(() => fast.getHKDF(new Uint8Array(65), new Uint8Array(32)), {
      name: 'InvalidCryptoExchangeError',
      message: 'a Noise chaining key longer than 64 bytes',
    })
  })

  it('counts its exchanges', () => {
    const before = sodiumKeyOperations().exchanges
    const k = fast.generateX25519KeyPair()
    fast.generateX25519SharedKey(k.privateKey, fast.generateX25519KeyPair().publicKey)
    assert.equal(sodiumKeyOperations().exchanges, before + 1)
  })
})

describe('Ed25519 on the key classes', () => {
  interface Case {
    key: PrivateKey
    message: Uint8Array
    signature: string
    /** The stock verdicts: the signature, a changed message, a changed signature, another key. */
    verdicts: boolean[]
  }
  const cases: Case[] = []
  const changed = (b: Uint8Array, at: number): Uint8Array => {
    const c = Uint8Array.from(b)
    c[at % c.byteLength]! ^= 0x40
    return c
  }
  const verdicts = async (key: PrivateKey, other: PrivateKey, message: Uint8Array, sig: Uint8Array) => [
    await key.publicKey.verify(message, sig),
    await key.publicKey.verify(changed(message, 3), sig),
    await key.publicKey.verify(message, changed(sig, 5)),
    await other.publicKey.verify(message, sig),
  ]

  before(async () => {
    // the stock results, taken before the patch is installed in this process
    const other = await generateKeyPair('Ed25519')
    for (let i = 0; i < 40; i++) {
      const key = await generateKeyPair('Ed25519')
      const message = randomBytes(1 + i * 7)
      const sig = await key.sign(message)
      cases.push({ key, message, signature: hex(sig), verdicts: await verdicts(key, other, message, sig) })
    }
    assert.equal(sodiumEd25519(sodium), true)
    cases.push({ key: other, message: new Uint8Array(0), signature: '', verdicts: [] })
  })

  it('installs once: the prototypes then carry its methods', () => {
    assert.equal(sodiumEd25519(sodium), true)
    const key = cases[0]!.key
    const proto = Object.getPrototypeOf(key) as { sign: () => unknown }
    const pubProto = Object.getPrototypeOf(key.publicKey) as { verify: () => unknown }
    assert.equal(proto.sign.toString(), sodiumEd25519Methods(sodium).sign.toString())
    assert.equal(pubProto.verify.toString(), sodiumEd25519Methods(sodium).verify.toString())
  })

  it('signs the same bytes and gives the same verdicts as the stock keys', async () => {
    const other = cases.at(-1)!.key
    const before = sodiumKeyOperations()
    for (const c of cases.slice(0, -1)) {
      const sig = await c.key.sign(c.message)
      assert.equal(hex(sig), c.signature)
      assert.deepEqual(await verdicts(c.key, other, c.message, sig), c.verdicts)
      assert.deepEqual(c.verdicts, [true, false, false, false])
    }
    const after = sodiumKeyOperations()
    assert.equal(after.signatures - before.signatures, cases.length - 1)
    assert.equal(after.checks - before.checks, 4 * (cases.length - 1))
  })

  it('takes lists as the stock keys do', async () => {
    const c = cases[3]!
    const list = new Uint8ArrayList(c.message.subarray(0, 2), c.message.subarray(2))
    const sig = await c.key.sign(list)
    assert.equal(hex(sig), c.signature)
    assert.equal(await c.key.publicKey.verify(list, sig), true)
  })

  it('refuses a signature of the wrong length with the stock words', () => {
    const c = cases[0]!
    for (const n of [0, 63, 65]) {
      assert.throws(() => c.key.publicKey.verify(c.message, new Uint8Array(n)), {
        name: 'TypeError',
        message: '"sig" must be 64 bytes in length.',
      })
    }
  })

  it('an aborted signal stops both before any work', () => {
    const c = cases[0]!
    const signal = AbortSignal.abort(new Error('given up'))
    assert.throws(() => c.key.sign(c.message, { signal }), { message: 'given up' })
    assert.throws(() => c.key.publicKey.verify(c.message, new Uint8Array(64), { signal }), { message: 'given up' })
  })

  it('a stored public key that does not match its seed signs from the seed alone', async () => {
    const c = cases[1]!
    const raw = Uint8Array.from(c.key.raw)
    raw.set(cases[2]!.key.publicKey.raw, 32)
    const mismatched = privateKeyFromRaw(raw)
    assert.equal(hex(await mismatched.sign(c.message)), c.signature)
  })
})
