/**
 * Three per-message costs of @chainsafe/libp2p-noise, worked around from outside.
 *
 * 1. Each message's ChaCha20-Poly1305 by the fastest of three implementations for its size
 *    (`noise({ crypto: noiseCrypto })`). The package's default seals messages under 1200 bytes in WebAssembly and
 *    larger ones with `crypto.createCipheriv(alg, key: Uint8Array, …)`, which imports the raw key into a new
 *    KeyObject on every call: 17-33 µs per message whatever its size up to a few KiB, more than the cipher itself.
 *    Per message, in a loop on the 2-vCPU Xeon of docs/performance.md (encrypt; decrypt within 15%):
 *
 *    | message | WebAssembly | OpenSSL, key imported once | libsodium (sodium-native) |
 *    |---|---|---|---|
 *    | 100 B | 1.8 µs | 5.4 µs | 0.7 µs |
 *    | 1,400 B | 11.5 µs | 7.2 µs | 2.2 µs |
 *    | 16 KiB | | 17.1 µs | 15.8 µs |
 *    | 64 KiB | | 38.7 µs | 57.6 µs |
 *
 *    So messages under {@link SODIUM_BELOW} go to libsodium, larger ones to OpenSSL, whose AVX-512 ChaCha20 is the
 *    faster on bulk data: called directly (src/p2p/patches/openssl-aead.ts), which saves `node:crypto`'s extra copy
 *    of every byte (a 512 MiB transfer through a pair of daemons: 16% less CPU per GiB), or else through `node:crypto` with the session key
 *    imported once (a `KeyObject` cached per key array, which Noise keeps for the life of the connection). Without
 *    sodium-native (a platform it has no prebuilt binding for), the smallest messages go to WebAssembly. A message of a new connection or an HTTP request
 *    is a few hundred bytes: with libsodium each daemon used 30-50 µs less CPU per new forwarded connection and the
 *    two daemons 13-15% less per proxied HTTP request. The handshake's key exchange, hashes and HKDF go to libsodium
 *    too (src/p2p/patches/handshake-crypto.ts).
 *
 * 2. An incoming message is opened where it lies when Noise asks for it (its `dst`, the message's first bytes), as
 *    the package's WebAssembly does: no buffer per message, and the plaintext keeps alive only the bytes read off
 *    the socket, never a slab of Node's buffer pool.
 *
 * 3. The reader of Noise messages (@libp2p/utils' LengthPrefixedDecoder with Noise's `uint16BEDecode`) learns that a
 *    chunk holds no further message from a RangeError, built with a stack trace for every chunk read off the socket:
 *    5% of the service host's CPU under load. A preallocated error still costs a throw per chunk, unwound to the
 *    decoder's `catch`: 0.36 µs a chunk in a loop against 0.03 without, 2.7-3% of each daemon's CPU on new
 *    connections. {@link quietNoiseDecoder} gives the reader a `decode` that reads the 2-byte lengths itself and stops
 *    when fewer bytes are buffered, with the same checks, errors and messages.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { asCrypto, defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { InvalidParametersError } from '@libp2p/interface'
import { InvalidMessageLengthError } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { handshakeCrypto } from './handshake-crypto.ts'
import { type OpensslAead, opensslAead } from './openssl-aead.ts'
import { type SodiumAead, sodiumAead, sodiumPublicKey } from './sodium.ts'

/** Without libsodium: below this many bytes the WebAssembly cipher is faster than a call into OpenSSL. */
const WASM_BELOW = 256
/** Below this many bytes libsodium is faster than OpenSSL (the table above). */
export const SODIUM_BELOW = 16_384
const TAG = 16
const ALG = 'chacha20-poly1305'

const keys = new WeakMap<Uint8Array, KeyObject>()

/** Lists of more pieces than this are copied into one buffer for OpenSSL. */
const MAX_PIECES = 4

/**
 * What to hand OpenSSL's `update()`: a batch of small Yamux frames arrives as a list of dozens of pieces, and one
 * call per piece (into C++, a new Buffer each) costs more than copying a few KiB; bulk data comes as a few large
 * pieces, which are passed as they are so that no byte is copied once more.
 */
function pieces(data: Uint8Array | NoiseList): Iterable<Uint8Array> {
  if (data instanceof Uint8Array) return [data]
  const few: Uint8Array[] = []
  for (const piece of data) {
    if (few.length === MAX_PIECES) return [data.subarray()]
    few.push(piece)
  }
  return few
}

/** The outputs of `update()` and the tag as Noise's list type, without joining them into one buffer. */
function asList(parts: Uint8Array[]): NoiseList {
  return new Uint8ArrayList(...parts) as unknown as NoiseList
}

let imported = 0

/** How many session keys this process has imported into OpenSSL (one per Noise session and direction). */
export function importedSessionKeys(): number {
  return imported
}

function keyObject(k: Uint8Array): KeyObject {
  let key = keys.get(k)
  if (key === undefined) {
    key = createSecretKey(k)
    keys.set(k, key)
    imported++
  }
  return key
}

type Encrypt = ICryptoInterface['chaCha20Poly1305Encrypt']
type Decrypt = ICryptoInterface['chaCha20Poly1305Decrypt']
/** Noise's own uint8arraylist version (the types differ by version, the objects do not). */
type NoiseList = Exclude<Parameters<Encrypt>[0], Uint8Array>

function opensslEncrypt(plaintext: Uint8Array | NoiseList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array) {
  const cipher = createCipheriv(ALG, keyObject(k), nonce, { authTagLength: TAG })
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
  const out: Uint8Array[] = []
  for (const piece of pieces(plaintext)) out.push(cipher.update(piece))
  cipher.final()
  out.push(cipher.getAuthTag())
  return asList(out)
}

function opensslDecrypt(ciphertext: Uint8Array | NoiseList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array) {
  const decipher = createDecipheriv(ALG, keyObject(k), nonce, { authTagLength: TAG })
  const end = ciphertext.byteLength - TAG
  decipher.setAAD(ad, { plaintextLength: end })
  decipher.setAuthTag(ciphertext.subarray(end))
  const text = ciphertext instanceof Uint8Array ? ciphertext.subarray(0, end) : ciphertext.sublist(0, end)
  const out: Uint8Array[] = []
  for (const piece of pieces(text)) out.push(decipher.update(piece))
  decipher.final() // throws when the tag does not match
  return out.length === 1 ? out[0]! : asList(out)
}

let sodiumMessages = 0
let directMessages = 0

/** How many Noise messages this process has sealed or opened with libsodium. */
export function libsodiumMessages(): number {
  return sodiumMessages
}

/** How many Noise messages this process has sealed or opened with OpenSSL called directly (openssl-aead.ts). */
export function directOpensslMessages(): number {
  return directMessages
}

/**
 * Noise's cipher calls: `sodium` for the smaller messages (WebAssembly for the smallest without it), `openssl()` for
 * the larger ones with no associated data (`node:crypto` without it, and for the handshake's).
 */
export function noiseCipher(
  sodium: SodiumAead | undefined,
  openssl: () => OpensslAead | undefined,
): Pick<ICryptoInterface, 'chaCha20Poly1305Encrypt' | 'chaCha20Poly1305Decrypt'> {
  const encrypt: Encrypt = (plaintext, nonce, ad, k) => {
    if (keySpy !== undefined) return keySpy(k, nonce)
    const size = plaintext.byteLength
    if (sodium !== undefined && size < SODIUM_BELOW) {
      const out = Buffer.allocUnsafe(size + TAG)
      const m = plaintext instanceof Uint8Array ? plaintext : plaintext.subarray()
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, m, ad.byteLength === 0 ? null : ad, null, nonce, k)
      sodiumMessages++
      return out
    }
    if (sodium === undefined && size < WASM_BELOW) return asCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const direct = ad.byteLength === 0 ? openssl() : undefined
    if (direct !== undefined) {
      directMessages++
      return direct.seal(pieces(plaintext), size, nonce, k)
    }
    return opensslEncrypt(plaintext, nonce, ad, k)
  }
  const decrypt: Decrypt = (ciphertext, nonce, ad, k, dst) => {
    if (keySpy !== undefined) return keySpy(k, nonce)
    const size = ciphertext.byteLength
    if (sodium !== undefined && size < SODIUM_BELOW) {
      if (size < TAG) throw new InvalidParametersError(`a Noise message of ${size} bytes is shorter than its tag`)
      const c = ciphertext instanceof Uint8Array ? ciphertext : ciphertext.subarray()
      // Noise's own `dst` is the message's first bytes (or a copy of them): opened in place, as its WebAssembly does;
      // otherwise (handshake payloads) a buffer of its own, not a slice of Node's pool that what is kept of the
      // payload (the remote's key) would keep alive
      const m = dst !== undefined && dst.byteLength === size - TAG ? dst : new Uint8Array(size - TAG)
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, c, ad.byteLength === 0 ? null : ad, nonce, k)
      sodiumMessages++
      return m
    }
    if (sodium === undefined && size < WASM_BELOW)
      return asCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const direct = ad.byteLength === 0 && size >= TAG ? openssl() : undefined
    if (direct !== undefined) {
      const end = size - TAG
      // into Noise's `dst` (the message's own bytes, or a copy of them) as with libsodium
      const out = dst !== undefined && dst.byteLength === end ? dst : Buffer.allocUnsafeSlow(end)
      const text = ciphertext instanceof Uint8Array ? ciphertext.subarray(0, end) : ciphertext.sublist(0, end)
      directMessages++
      return direct.open(pieces(text), ciphertext.subarray(end), nonce, k, out)
    }
    return opensslDecrypt(ciphertext, nonce, ad, k)
  }
  return { chaCha20Poly1305Encrypt: encrypt, chaCha20Poly1305Decrypt: decrypt }
}

/** While set, the cipher seals and opens nothing: it hands the spy the key and nonce it was called with. */
let keySpy: ((k: Uint8Array, nonce: Uint8Array) => Uint8Array) | undefined

/**
 * Runs `call` (a Noise cipher state's encrypt or decrypt) with the cipher of {@link noiseCrypto} telling `seen` the
 * key and nonce instead of sealing or opening anything: how src/p2p/patches/session-cipher.ts reads a session's keys,
 * which Noise keeps in closures. The cipher state counts the call as a message. False when the cipher was not called
 * (a session on another crypto).
 */
export function spyOnKeys(call: () => unknown, seen: (k: Uint8Array, nonce: Uint8Array) => void): boolean {
  let called = false
  keySpy = (k, nonce) => {
    called = true
    seen(k, nonce)
    return new Uint8Array(0)
  }
  try {
    call()
  } finally {
    keySpy = undefined
  }
  return called
}

const sodium = sodiumAead()

/** Which implementation seals this process's smaller Noise messages. */
export const noiseCipherKind: 'libsodium' | 'webassembly' = sodium === undefined ? 'webassembly' : 'libsodium'

const publicKeyMath = sodiumPublicKey()

/** The crypto for `noise({ crypto })`: the cipher above; X25519, SHA-256 and HKDF by libsodium where it loads. */
export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  ...(publicKeyMath === undefined ? {} : handshakeCrypto(publicKeyMath)),
  ...noiseCipher(sodium, opensslAead),
}

/** Thrown, never constructed again, when fewer than 2 bytes are buffered: the stock reader only checks its class. */
const NEED_MORE = new RangeError('Could not decode int16BE')

function uint16BE(data: Uint8Array | { length: number; getUint16(offset: number): number }): number {
  if (data.length < 2) throw NEED_MORE
  if (data instanceof Uint8Array) return (data[0]! << 8) + data[1]!
  return data.getUint16(0)
}

/** The length decoder {@link quietNoiseDecoder} installs (tests compare against it). */
export const quietUint16BE = uint16BE

/** What {@link decodeMessages} uses of @libp2p/utils' LengthPrefixedDecoder. */
interface NoiseReader {
  buffer: Uint8ArrayList
  maxBufferSize: number
  maxDataLength: number
}

const NONE: readonly Uint8ArrayList[] = Object.freeze([])

/**
 * `LengthPrefixedDecoder.decode` for 2-byte big-endian lengths, without the throw that ends each call: the messages
 * whole in the buffer after `chunk`, in order (empty ones skipped, as the stock reader does).
 */
function decodeMessages(this: NoiseReader, chunk: Uint8Array | Uint8ArrayList): readonly Uint8ArrayList[] {
  const buffer = this.buffer
  buffer.append(chunk)
  if (buffer.byteLength > this.maxBufferSize) {
    throw new InvalidParametersError(`Buffer length limit exceeded - ${buffer.byteLength}/${this.maxBufferSize}`)
  }
  let out: Uint8ArrayList[] | undefined
  while (buffer.byteLength >= 2) {
    const length = (buffer.get(0) << 8) | buffer.get(1)
    if (length > this.maxDataLength) throw new InvalidMessageLengthError('Invalid message length')
    const end = 2 + length
    if (buffer.byteLength < end) break
    const message = buffer.sublist(2, end)
    buffer.consume(end)
    if (message.byteLength === 0) continue
    if (out === undefined) out = [message]
    else out.push(message)
  }
  return out ?? NONE
}

/** The `decode` {@link quietNoiseDecoder} installs (tests compare against it). */
export const quietDecode = decodeMessages

/**
 * Gives the message reader of `conn` (Noise's encrypted stream), if it is Noise's, Warren's length decoder and
 * {@link decodeMessages}; true when the reader now uses both.
 */
export function quietNoiseDecoder(conn: unknown): boolean {
  const decoder = (conn as { decoder?: { lengthDecoder?: (data: never) => number; decode?: unknown } }).decoder
  if (decoder?.lengthDecoder?.name === 'uint16BEDecode' && typeof decoder.decode === 'function') {
    decoder.lengthDecoder = uint16BE
    decoder.decode = decodeMessages
  }
  return decoder?.lengthDecoder === uint16BE && decoder.decode === decodeMessages
}
