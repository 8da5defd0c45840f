/**
 * libsodium's ChaCha20-Poly1305 (IETF, 96-bit nonce) through `sodium-native`, the prebuilt N-API binding that
 * hyperdht and holepunch ship, loaded once per process. Noise uses it for its smaller messages
 * (src/p2p/patches/noise-crypto.ts); a platform without a prebuilt binding gets `undefined` here and Noise falls back
 * to OpenSSL and WebAssembly.
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

let loaded: SodiumAead | null | undefined

/** sodium-native's AEAD, or undefined when it cannot be loaded on this platform. */
export function sodiumAead(): SodiumAead | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('sodium-native') as SodiumAead
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}
