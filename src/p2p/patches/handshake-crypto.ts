/**
 * The public-key math of a new connection through libsodium (`sodium-native`) instead of `node:crypto` and pure
 * JavaScript. Each new connection makes, on each end, one X25519 key pair and three X25519 exchanges (Noise XX), two
 * Ed25519 signatures and two checks of the remote's (Noise's handshake payload, identify's signed peer record), four
 * HKDFs and a few dozen SHA-256 hashes of under 100 bytes. The packages do each through a new OpenSSL key object made
 * from DER or JWK text on every call, or in JavaScript. Per call, in a loop on the 2-vCPU Xeon of docs/performance.md:
 *
 * | operation | package | libsodium |
 * |---|---|---|
 * | Ed25519 sign (`@libp2p/crypto`: key from JWK, `crypto.sign`) | 78 µs | 13 µs |
 * | Ed25519 verify (`@libp2p/crypto`: key from JWK, `crypto.verify`) | 136 µs | 36 µs |
 * | X25519 key pair (Noise: `generateKeyPairSync`, DER out) | 66 µs | 14 µs |
 * | X25519 exchange (Noise: both keys from DER, `diffieHellman`) | 120 µs | 34 µs |
 * | HKDF-SHA256 to 96 bytes (Noise: `@noble/hashes`) | 14.5 µs | 4 µs |
 * | SHA-256 of 64 bytes (Noise: `createHash`) | 2.1 µs | 0.5 µs |
 *
 * {@link handshakeCrypto} gives Noise the X25519, hash and HKDF calls (`noise({ crypto })`);
 * {@link sodiumEd25519} puts libsodium's signing and checking on `@libp2p/crypto`'s Ed25519 key classes for the
 * whole process. Ed25519 signatures are deterministic, so a signature is the same bytes either way; libsodium's check
 * also refuses public keys and signature points of small order and non-canonical encodings, which no honest signer
 * makes. An exchange that gives the all-zero secret (a remote key of small order) is refused, as OpenSSL refuses it.
 */
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import type { AbortOptions } from '@libp2p/interface'
import { InvalidCryptoExchangeError } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { SodiumPublicKey } from './sodium.ts'

const BLOCK = 64
const HASH = 32

let exchanges = 0
let signatures = 0
let checks = 0

/** X25519 exchanges, Ed25519 signatures and Ed25519 checks this process has made with libsodium. */
export function sodiumKeyOperations(): { exchanges: number; signatures: number; checks: number } {
  return { exchanges, signatures, checks }
}

/** Any version's Uint8ArrayList (Noise's types and libp2p's may come from different copies of the package). */
type Bytes = Uint8Array | Pick<Uint8ArrayList, 'subarray'>

const bytes = (data: Bytes): Uint8Array => (data instanceof Uint8Array ? data : data.subarray())

/** HMAC-SHA256 (RFC 2104) of `parts` under a key of at most 64 bytes. */
function hmac(s: SodiumPublicKey, key: Uint8Array, parts: Uint8Array[]): Uint8Array {
  let length = BLOCK
  for (const p of parts) length += p.byteLength
  const inner = new Uint8Array(length)
  inner.set(key)
  for (let i = 0; i < BLOCK; i++) inner[i]! ^= 0x36
  let at = BLOCK
  for (const p of parts) {
    inner.set(p, at)
    at += p.byteLength
  }
  const outer = new Uint8Array(BLOCK + HASH)
  outer.set(key)
  for (let i = 0; i < BLOCK; i++) outer[i]! ^= 0x5c
  s.crypto_hash_sha256(outer.subarray(BLOCK), inner)
  const mac = new Uint8Array(HASH)
  s.crypto_hash_sha256(mac, outer)
  return mac
}

/**
 * Noise's X25519, SHA-256 and HKDF through libsodium: `HKDF(ck, ikm)` is RFC 5869 with `ck` as the salt, no info
 * and 96 bytes of output, as Noise defines it.
 */
export function handshakeCrypto(
  s: SodiumPublicKey,
): Pick<
  ICryptoInterface,
  'hashSHA256' | 'getHKDF' | 'generateX25519KeyPair' | 'generateX25519KeyPairFromSeed' | 'generateX25519SharedKey'
> {
  const fromSeed = (seed: Uint8Array): { publicKey: Uint8Array; privateKey: Uint8Array } => {
    const publicKey = new Uint8Array(32)
    s.crypto_scalarmult_base(publicKey, seed)
    return { publicKey, privateKey: seed }
  }
  return {
    hashSHA256(data) {
      const out = new Uint8Array(HASH)
      s.crypto_hash_sha256(out, bytes(data))
      return out
    },
    getHKDF(ck, ikm) {
      if (ck.byteLength > BLOCK) throw new InvalidCryptoExchangeError('a Noise chaining key longer than 64 bytes')
      const prk = hmac(s, ck, [ikm])
      const k1 = hmac(s, prk, [Uint8Array.of(1)])
      const k2 = hmac(s, prk, [k1, Uint8Array.of(2)])
      const k3 = hmac(s, prk, [k2, Uint8Array.of(3)])
      return [k1, k2, k3]
    },
    generateX25519KeyPair() {
      const seed = new Uint8Array(32)
      s.randombytes_buf(seed)
      return fromSeed(seed)
    },
    generateX25519KeyPairFromSeed: fromSeed,
    generateX25519SharedKey(privateKey, publicKey) {
      const out = new Uint8Array(32)
      try {
        s.crypto_scalarmult(out, bytes(privateKey), bytes(publicKey))
      } catch {
        throw new InvalidCryptoExchangeError('the X25519 exchange gave no secret: the remote key is of small order')
      }
      exchanges++
      return out
    },
  }
}

interface Ed25519Key {
  raw: Uint8Array
}
type Sign = (this: Ed25519Key, message: Uint8Array | Uint8ArrayList, options?: AbortOptions) => Uint8Array
type Verify = (this: Ed25519Key, data: Uint8Array | Uint8ArrayList, sig: Uint8Array, options?: AbortOptions) => boolean

let installed: { sign: Sign; verify: Verify } | undefined

/** The `sign` and `verify` {@link sodiumEd25519} installs (tests compare against them). */
export function sodiumEd25519Methods(s: SodiumPublicKey): { sign: Sign; verify: Verify } {
  /**
   * libsodium's secret key (the seed, then the public key derived from it) for each private key's `raw` (the seed,
   * then the public key as stored): derived once per key, so that a stored public key that does not match its seed
   * signs as OpenSSL does, from the seed alone.
   */
  const secretKeys = new WeakMap<Uint8Array, Uint8Array>()
  const secretKey = (raw: Uint8Array): Uint8Array => {
    let sk = secretKeys.get(raw)
    if (sk === undefined) {
      sk = new Uint8Array(64)
      s.crypto_sign_seed_keypair(new Uint8Array(32), sk, raw.subarray(0, 32))
      secretKeys.set(raw, sk)
    }
    return sk
  }
  return {
    sign(message, options) {
      options?.signal?.throwIfAborted()
      const sig = Buffer.alloc(64)
      s.crypto_sign_detached(sig, bytes(message), secretKey(this.raw))
      signatures++
      return sig
    },
    verify(data, sig, options) {
      options?.signal?.throwIfAborted()
      if (sig.byteLength !== 64) throw new TypeError('"sig" must be 64 bytes in length.')
      checks++
      return s.crypto_sign_verify_detached(sig, bytes(data), this.raw)
    },
  }
}

/**
 * Puts libsodium's Ed25519 on `@libp2p/crypto`'s key classes (their prototypes, for every key of the process); true
 * when they now use it. Refuses (false) when the classes are not the ones expected: a 64-byte `raw` private key whose
 * `publicKey` has a 32-byte `raw`, and `sign`/`verify` methods on their prototypes.
 */
export function sodiumEd25519(s: SodiumPublicKey): boolean {
  const key = privateKeyFromRaw(new Uint8Array(64)) as unknown as Ed25519Key & { publicKey: Ed25519Key }
  const priv = Object.getPrototypeOf(key) as { sign?: unknown }
  const pub = Object.getPrototypeOf(key.publicKey) as { verify?: unknown }
  if (installed !== undefined) return priv.sign === installed.sign && pub.verify === installed.verify
  if (key.raw.byteLength !== 64 || key.publicKey.raw.byteLength !== 32) return false
  if (typeof priv.sign !== 'function' || typeof pub.verify !== 'function') return false
  installed = sodiumEd25519Methods(s)
  priv.sign = installed.sign
  pub.verify = installed.verify
  return true
}
