/**
 * libsodium's ChaCha20-Poly1305 (IETF, 96-bit nonce) through `sodium-native`, the prebuilt N-API binding that
 * hyperdht and holepunch ship, loaded once per process. Noise uses it for its smaller messages
 * (src/p2p/patches/noise-crypto.ts), and a new connection for its X25519, hashes and Ed25519
 * (src/p2p/patches/handshake-crypto.ts); a platform without a prebuilt binding gets `undefined` here and those fall
 * back to OpenSSL, WebAssembly and JavaScript.
 */
import { createRequire } from 'node:module'

/** The two AEAD calls of sodium-native that Noise needs (its own signatures: output first, `nsec` always null). */
export interface SodiumAead {
  /** Writes `m` sealed into `c` (`m.byteLength + 16` bytes: ciphertext, then the tag). */
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number
  /**
   * Writes `c` opened into `m` (`c.byteLength - 16` bytes); throws when the tag does not match, and then `m` holds
   * no plaintext. `m` may be the first bytes of `c` itself: the tag is checked over the ciphertext before any byte
   * of it is overwritten.
   */
  crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    ad: Uint8Array | null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number
}

/**
 * The calls of sodium-native for a new connection's key exchange, hashes and signatures
 * (src/p2p/patches/handshake-crypto.ts): its own signatures, output first; a failed exchange throws.
 */
export interface SodiumPublicKey {
  randombytes_buf(buf: Uint8Array): void
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void
  crypto_hash_sha256(out: Uint8Array, input: Uint8Array): void
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void
  crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean
}

let loaded: (SodiumAead & SodiumPublicKey) | null | undefined

/** sodium-native's AEAD, or undefined when it cannot be loaded on this platform. */
export function sodiumAead(): SodiumAead | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('sodium-native') as SodiumAead & SodiumPublicKey
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}

/** sodium-native's X25519, SHA-256 and Ed25519, or undefined when it cannot be loaded on this platform. */
export function sodiumPublicKey(): SodiumPublicKey | undefined {
  sodiumAead()
  return loaded ?? undefined
}
