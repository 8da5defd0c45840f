/**
 * ChaCha20-Poly1305 by Node's own OpenSSL, called through koffi instead of `crypto.createCipheriv`, for Noise's
 * large messages (src/p2p/patches/noise-crypto.ts).
 *
 * Node's `cipher.update()` writes its output into a buffer one byte larger than the input (the cipher's block size
 * for a stream cipher) and then copies it into a second buffer of the exact size: two allocations and one copy of
 * every byte, on top of the cipher object made per message. In a 512 MiB transfer through a pair of daemons that copy
 * and its allocations were ~20% of the sending daemon's CPU. Here one EVP context per process is initialised per
 * message with the session key and nonce, the pieces of a message (a Yamux header and its data) are sealed straight
 * into one buffer, and an incoming message is opened into the buffer Noise gives (its own bytes, in place).
 *
 * The symbols are the ones Node exports for native addons (`EVP_*` of the OpenSSL it is built with); a Node built
 * against a shared OpenSSL, or koffi missing, leaves {@link opensslAead} undefined and Noise uses `node:crypto`.
 */
import { createRequire } from 'node:module'

const TAG = 16
const EVP_CTRL_AEAD_GET_TAG = 0x10
const EVP_CTRL_AEAD_SET_TAG = 0x11

export interface OpensslAead {
  /** `pieces` (in order, `size` bytes in all) sealed under `key` and `nonce`: ciphertext then the 16-byte tag. */
  seal(pieces: Iterable<Uint8Array>, size: number, nonce: Uint8Array, key: Uint8Array): Uint8Array
  /**
   * Opens `pieces` (the ciphertext without its tag, `out.byteLength` bytes in all) into `out`, which may be the
   * ciphertext's own bytes; throws when `tag` does not match (and `out` then holds no plaintext to use).
   */
  open(pieces: Iterable<Uint8Array>, tag: Uint8Array, nonce: Uint8Array, key: Uint8Array, out: Uint8Array): Uint8Array
}

/** Thrown when a message's tag does not match: the same words as `node:crypto`'s decipher. */
export class AeadAuthError extends Error {
  constructor() {
    super('Unsupported state or unable to authenticate data')
    this.name = 'AeadAuthError'
  }
}

type Fn<A extends unknown[]> = (...args: A) => number

function load(): OpensslAead | undefined {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
  // the process itself: Node's binary exports the OpenSSL it is linked with
  const lib = koffi.load(null as unknown as string)
  const ctxNew = lib.func('void *EVP_CIPHER_CTX_new(void)') as () => unknown
  const chacha = lib.func('const void *EVP_chacha20_poly1305(void)') as () => unknown
  const init = lib.func(
    'int EVP_CipherInit_ex2(void *ctx, const void *cipher, const uint8_t *key, const uint8_t *iv, int enc, void *params)',
  ) as Fn<[unknown, unknown, Uint8Array, Uint8Array, number, null]>
  const update = lib.func(
    'int EVP_CipherUpdate(void *ctx, uint8_t *out, _Out_ int *outl, const uint8_t *in, int inl)',
  ) as Fn<[unknown, Uint8Array, number[], Uint8Array, number]>
  const final = lib.func('int EVP_CipherFinal_ex(void *ctx, uint8_t *out, _Out_ int *outl)') as Fn<
    [unknown, Uint8Array, number[]]
  >
  const ctrl = lib.func('int EVP_CIPHER_CTX_ctrl(void *ctx, int type, int arg, uint8_t *ptr)') as Fn<
    [unknown, number, number, Uint8Array]
  >
  // a failed call leaves its reasons on the thread's OpenSSL error queue, where node:crypto would find them later
  const clearErrors = lib.func('void ERR_clear_error(void)') as () => void
  const ctx = ctxNew()
  const cipher = chacha()
  if (ctx === null || cipher === null) return undefined
  const written = [0]
  /** Where a final call may write (ChaCha20-Poly1305 writes nothing there). */
  const spare = new Uint8Array(TAG)

  /** OpenSSL reads 32 bytes of key and 12 of nonce whatever it is given: anything else is refused before the call. */
  const check = (key: Uint8Array, nonce: Uint8Array): void => {
    if (key.byteLength !== 32 || nonce.byteLength !== 12) {
      throw new RangeError(
        `a ChaCha20-Poly1305 key is 32 bytes and its nonce 12 (${key.byteLength} and ${nonce.byteLength})`,
      )
    }
  }

  /** Runs `pieces` through the initialised context into `out` from its start; false when a piece does not fit. */
  const run = (pieces: Iterable<Uint8Array>, out: Uint8Array): boolean => {
    let at = 0
    for (const piece of pieces) {
      if (at + piece.byteLength > out.byteLength) return false
      if (piece.byteLength === 0) continue
      const into = at === 0 ? out : out.subarray(at)
      if (update(ctx, into, written, piece, piece.byteLength) !== 1 || written[0] !== piece.byteLength) return false
      at += piece.byteLength
    }
    return at === out.byteLength
  }

  return {
    seal(pieces, size, nonce, key) {
      check(key, nonce)
      const out = Buffer.allocUnsafeSlow(size + TAG)
      const text = out.subarray(0, size)
      const tag = out.subarray(size)
      const sealed =
        init(ctx, cipher, key, nonce, 1, null) === 1 &&
        run(pieces, text) &&
        final(ctx, spare, written) === 1 &&
        ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, tag) === 1
      if (!sealed) {
        clearErrors()
        throw new Error(`OpenSSL could not seal a message of ${size} bytes`)
      }
      return out
    },
    open(pieces, tag, nonce, key, out) {
      check(key, nonce)
      if (tag.byteLength !== TAG) throw new AeadAuthError()
      // the tag is copied first: `out` may overlap the bytes it came with
      const expected = Uint8Array.from(tag)
      const ready =
        init(ctx, cipher, key, nonce, 0, null) === 1 &&
        ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, expected) === 1 &&
        run(pieces, out)
      if (!ready) {
        clearErrors()
        throw new Error(`OpenSSL could not open a message of ${out.byteLength} bytes`)
      }
      if (final(ctx, spare, written) !== 1) {
        clearErrors()
        throw new AeadAuthError()
      }
      return out
    },
  }
}

let loaded: OpensslAead | null | undefined

/** ChaCha20-Poly1305 straight through Node's OpenSSL, or undefined where its symbols or koffi are not there. */
export function opensslAead(): OpensslAead | undefined {
  if (loaded === undefined) {
    try {
      loaded = load() ?? null
    } catch {
      loaded = null
    }
  }
  return loaded ?? undefined
}
