/**
 * Two per-message costs of @chainsafe/libp2p-noise, worked around from outside.
 *
 * 1. ChaCha20-Poly1305 with the session key imported into OpenSSL once instead of once per message
 *    (`noise({ crypto: noiseCrypto })`). The package's default crypto encrypts messages under 1200 bytes in
 *    WebAssembly and larger ones with `crypto.createCipheriv(alg, key: Uint8Array, …)`, which imports the raw key
 *    into a new KeyObject on every call: 17-33 µs per message whatever its size up to a few KiB, more than the
 *    cipher itself. With the key imported once per session (a `KeyObject` cached per key array, which Noise keeps
 *    for the life of the connection) OpenSSL takes 5-8 µs for 0.4-4 KiB and 35 µs for a 64 KiB message (85 µs
 *    before); WebAssembly stays the faster choice only for the smallest messages (window updates, ~3.5 µs).
 *    Hashing and key exchange stay the package's default.
 *
 * 2. The reader of Noise messages (@libp2p/utils' LengthPrefixedDecoder with Noise's `uint16BEDecode`) learns that a
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

/** Below this many bytes the WebAssembly cipher is faster than a call into OpenSSL. */
const WASM_BELOW = 256
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

const encrypt: Encrypt = (plaintext, nonce, ad, k) => {
  if (plaintext.byteLength < WASM_BELOW) return asCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  const cipher = createCipheriv(ALG, keyObject(k), nonce, { authTagLength: TAG })
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
  const out: Uint8Array[] = []
  for (const piece of pieces(plaintext)) out.push(cipher.update(piece))
  cipher.final()
  out.push(cipher.getAuthTag())
  return asList(out)
}

const decrypt: Decrypt = (ciphertext, nonce, ad, k, dst) => {
  if (ciphertext.byteLength < WASM_BELOW) return asCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
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

/** The crypto for `noise({ crypto })`. */
export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt: encrypt,
  chaCha20Poly1305Decrypt: decrypt,
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
