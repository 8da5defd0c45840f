/**
 * A Noise session's transport keys and counters, without @chainsafe/libp2p-noise's objects for them. After its
 * handshake Noise keeps each direction in a CipherState (the key, a Nonce with its own 12-byte buffer and a DataView
 * on it) reached only through two closures: ~1.5 KiB per connection. A relay's parked connection
 * (src/relay/server/parked-link.ts) keeps the 64 bytes of the two keys and the two counters instead
 * ({@link SessionKeys}), and a woken one seals and opens with a {@link SessionCipher} made from them: the same
 * cipher (src/p2p/patches/noise-crypto.ts), the same nonces (a 32-bit counter, little-endian at byte 4 of 12) and
 * the same limit as Noise's CipherState.
 */
import { noiseCrypto, spyOnKeys } from './noise-crypto.ts'

/** What Noise's message stream calls on its handshake result. */
export interface NoiseSession {
  encrypt(plaintext: Uint8Array): Uint8Array | { subarray(): Uint8Array }
  decrypt(ciphertext: Uint8Array, dst?: Uint8Array): Uint8Array | { subarray(): Uint8Array }
}

/** Noise's MAX_NONCE: a session ends before its counter passes 2^32 - 1. */
const MAX_NONCE = 0xffff_ffff
const ZEROLEN = new Uint8Array(0)

/** The two keys (sending first) and the next counter of each direction. */
export interface SessionKeys {
  keys: Uint8Array
  sent: number
  received: number
}

function counterOf(nonce: Uint8Array): number | undefined {
  if (nonce.byteLength !== 12) return undefined
  for (const i of [0, 1, 2, 3, 8, 9, 10, 11]) if (nonce[i] !== 0) return undefined
  return (nonce[4]! | (nonce[5]! << 8) | (nonce[6]! << 16) | (nonce[7]! << 24)) >>> 0
}

/**
 * Reads `session`'s keys and next counters through the cipher (one call each way, which the session counts as a
 * message: it must not be used again). Undefined when the session does not use {@link noiseCrypto}'s cipher.
 */
export function sessionKeys(session: NoiseSession): SessionKeys | undefined {
  const keys = new Uint8Array(64)
  let sent: number | undefined
  let received: number | undefined
  const out = spyOnKeys(
    () => session.encrypt(ZEROLEN),
    (k, nonce) => {
      if (k.byteLength !== 32) return
      keys.set(k, 0)
      sent = counterOf(nonce)
    },
  )
  const back = spyOnKeys(
    () => session.decrypt(new Uint8Array(16), new Uint8Array(0)),
    (k, nonce) => {
      if (k.byteLength !== 32) return
      keys.set(k, 32)
      received = counterOf(nonce)
    },
  )
  if (!out || !back || sent === undefined || received === undefined) return undefined
  return { keys, sent, received }
}

function writeCounter(nonce: Uint8Array, n: number): void {
  nonce[4] = n & 0xff
  nonce[5] = (n >>> 8) & 0xff
  nonce[6] = (n >>> 16) & 0xff
  nonce[7] = (n >>> 24) & 0xff
}

/** The shared nonce of {@link sealWith} and {@link openWith}: the cipher does not keep it. */
const scratch = new Uint8Array(12)

/** Seals one message with `k` and counter `n` (no associated data). */
export function sealWith(k: Uint8Array, n: number, plaintext: Uint8Array): Uint8Array {
  if (n > MAX_NONCE) throw new Error('Cipherstate has reached maximum n, a new handshake must be performed')
  writeCounter(scratch, n)
  const sealed = noiseCrypto.chaCha20Poly1305Encrypt(plaintext, scratch, ZEROLEN, k)
  return sealed instanceof Uint8Array ? sealed : sealed.subarray()
}

/** Opens one message with `k` and counter `n` into `dst` where the cipher allows; throws when it does not open. */
export function openWith(k: Uint8Array, n: number, ciphertext: Uint8Array, dst?: Uint8Array): Uint8Array {
  if (n > MAX_NONCE) throw new Error('Cipherstate has reached maximum n, a new handshake must be performed')
  writeCounter(scratch, n)
  const opened = noiseCrypto.chaCha20Poly1305Decrypt(ciphertext, scratch, ZEROLEN, k, dst)
  return opened instanceof Uint8Array ? opened : opened.subarray()
}

/** A session rebuilt from its {@link SessionKeys}, for Noise's message stream. */
export class SessionCipher implements NoiseSession {
  readonly #out: Uint8Array
  readonly #in: Uint8Array
  readonly #nonceOut = new Uint8Array(12)
  readonly #nonceIn = new Uint8Array(12)
  #sent: number
  #received: number

  constructor(state: SessionKeys) {
    this.#out = state.keys.subarray(0, 32)
    this.#in = state.keys.subarray(32, 64)
    this.#sent = state.sent
    this.#received = state.received
  }

  encrypt(plaintext: Uint8Array): ReturnType<NoiseSession['encrypt']> {
    if (this.#sent > MAX_NONCE) throw new Error('Cipherstate has reached maximum n, a new handshake must be performed')
    writeCounter(this.#nonceOut, this.#sent)
    const sealed = noiseCrypto.chaCha20Poly1305Encrypt(plaintext, this.#nonceOut, ZEROLEN, this.#out)
    this.#sent++
    return sealed
  }

  decrypt(ciphertext: Uint8Array, dst?: Uint8Array): ReturnType<NoiseSession['decrypt']> {
    if (this.#received > MAX_NONCE) {
      throw new Error('Cipherstate has reached maximum n, a new handshake must be performed')
    }
    writeCounter(this.#nonceIn, this.#received)
    const opened = noiseCrypto.chaCha20Poly1305Decrypt(ciphertext, this.#nonceIn, ZEROLEN, this.#in, dst)
    this.#received++
    return opened
  }
}
