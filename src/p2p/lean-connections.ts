/**
 * What a node keeps per open connection, kept small. Two things it holds for as long as a connection lives cost far
 * more than their size:
 *
 * - **The peer id's text in `remoteAddr`.** `@multiformats/multiaddr` parses a multiaddr string one character at a
 *   time with `+=`, and V8 keeps a value of 13 characters or more built that way as a tree of concatenations, one
 *   32-byte node per character: the `/p2p/12D3KooW…` value (52 characters) costs 1.2 KiB where 70 bytes hold it.
 *   Reading a character of such a string makes V8 flatten it in place and drop the tree ({@link flattenAddr}).
 * - **The peer id's digest.** `@libp2p/crypto` encodes the remote's public key with `Buffer.allocUnsafe`, a slice of
 *   Node's shared pool (64 KiB slabs in Node 24), and the peer id keeps that slice as its digest: every slab that
 *   served a handshake stays alive for as long as one of its connections does, 2.8 KiB per connection on a relay
 *   with 1,000. The digest's own multihash already holds the same bytes in a buffer of their size
 *   ({@link unpinPeerId} points the digest there).
 * - **The remote address's bytes.** A multiaddr encodes its bytes when first asked for them (identify sends each
 *   node the address it was seen at) with `Buffer.concat`, a slice of the same pool, and keeps them: 4-5 KiB per
 *   connection on a relay whose clients run identify. {@link ownAddrBytes} has them encoded into a buffer of their
 *   own size first.
 * - **The Noise handshake's payload.** The encrypted stream keeps its handshake for the ciphers, and with it what
 *   the remote sent in the handshake (its public key, signature and extensions, ~0.6 KiB), read once when the
 *   connection was made ({@link dropHandshakePayload}).
 *
 * @packageDocumentation
 */
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The length from which V8 keeps a concatenation as a tree (`ConsString::kMinLength`). */
const CONS_MIN_LENGTH = 13

/** Flattens, in place, the long component values of `addr` (their text does not change). */
export function flattenAddr(addr: Multiaddr): void {
  for (const c of addr.getComponents()) {
    if (c.value !== undefined && c.value.length >= CONS_MIN_LENGTH) c.value.charCodeAt(0)
  }
}

/** A multihash as `multiformats` builds it: `digest` is the hashed bytes, `bytes` the whole multihash. */
interface MutableDigest {
  digest: Uint8Array
  readonly bytes: Uint8Array
}

/**
 * Points the digest of `peer`'s multihash at the tail of the multihash's own bytes when the digest is a view into
 * some larger buffer (same bytes, so the id does not change). True when it did; false when there was nothing to do.
 */
export function unpinPeerId(peer: PeerId): boolean {
  const mh = peer.toMultihash() as unknown as MutableDigest
  const { digest, bytes } = mh
  if (digest.byteLength === digest.buffer.byteLength || digest.buffer === bytes.buffer) return false
  if (bytes.byteLength < digest.byteLength) return false
  const tail = bytes.subarray(bytes.byteLength - digest.byteLength)
  for (let i = 0; i < tail.byteLength; i++) if (tail[i] !== digest[i]) return false
  mh.digest = tail
  return true
}

/**
 * Has `addr` encode and cache its bytes now, into a buffer of their own: `Buffer.allocUnsafe` takes a slice of the
 * pool only for sizes under half of `Buffer.poolSize`, so the encoding runs with that at 0 (synchronously: nothing
 * else allocates meanwhile). True when the cached bytes are their own buffer; false when they were encoded before.
 */
export function ownAddrBytes(addr: Multiaddr): boolean {
  const poolSize = Buffer.poolSize
  Buffer.poolSize = 0
  let bytes: Uint8Array
  try {
    bytes = addr.bytes
  } finally {
    Buffer.poolSize = poolSize
  }
  return bytes.byteLength === bytes.buffer.byteLength
}

/** The shape of `@chainsafe/libp2p-noise`'s encrypted stream, as a connection's muxer holds it. */
interface NoiseHolder {
  muxer?: { maConn?: { handshake?: { payload?: unknown; encrypt?: unknown } } }
}

/**
 * Lets go of the payload the remote sent in the Noise handshake, which the encrypted stream keeps with its ciphers:
 * libp2p reads it (the key, the extensions) before the connection opens and never again. True when there was one.
 */
export function dropHandshakePayload(conn: object): boolean {
  const handshake = (conn as NoiseHolder).muxer?.maConn?.handshake
  if (handshake === undefined || handshake.payload === undefined || typeof handshake.encrypt !== 'function')
    return false
  handshake.payload = undefined
  return true
}

/** Applies all four to every connection `node` opens. */
export function leanConnections(node: {
  addEventListener(
    type: 'connection:open',
    fn: (evt: CustomEvent<{ remoteAddr: Multiaddr; remotePeer: PeerId }>) => void,
  ): void
}): void {
  node.addEventListener('connection:open', (evt) => {
    flattenAddr(evt.detail.remoteAddr)
    ownAddrBytes(evt.detail.remoteAddr)
    dropHandshakePayload(evt.detail)
    unpinPeerId(evt.detail.remotePeer)
  })
}
