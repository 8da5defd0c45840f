/**
 * The record a node publishes in Warren's DHT: a libp2p signed peer record (an envelope in the `libp2p-peer-record`
 * domain, signed with the node's own key) holding its relay and direct addresses, stored under the key
 * `/warren-peer/<peer id multihash>`.
 *
 * The sequence number is the publishing time in ms, so the newest record wins ({@link selectPeerRecord}) and an old
 * one expires: DHT servers and readers refuse records older than {@link RECORD_MAX_AGE_MS} or more than
 * {@link RECORD_MAX_SKEW_MS} in the future ({@link validatePeerRecord}). Nodes publish again well before that.
 *
 * @example
 * ```ts
 * const bytes = await sealPeerRecord(privateKey, addrs, Date.now())
 * const rec = await openPeerRecord(bytes)        // { id, addrs, seq }
 * ```
 */
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromMultihash, peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { isPrivate } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'

/** The DHT key namespace (the validator and selector are registered under it). */
export const RECORD_NAMESPACE = 'warren-peer'
const PREFIX = new TextEncoder().encode(`/${RECORD_NAMESPACE}/`)
/** Records older than this are refused by every Warren node, ms. */
export const RECORD_MAX_AGE_MS = 60 * 60 * 1000
/** Clocks may differ this much before a record counts as "from the future", ms. */
export const RECORD_MAX_SKEW_MS = 10 * 60 * 1000
/** DHT servers keep records in memory: larger records are refused. */
export const RECORD_MAX_BYTES = 4_096
export const RECORD_MAX_ADDRS = 32

export interface OpenedRecord {
  id: PeerId
  addrs: Multiaddr[]
  /** Publishing time, ms since the epoch (the record's sequence number). */
  seq: number
}

/** The DHT key of a node's record. */
export function recordKey(id: PeerId): Uint8Array {
  const mh = id.toMultihash().bytes
  const key = new Uint8Array(PREFIX.length + mh.length)
  key.set(PREFIX)
  key.set(mh, PREFIX.length)
  return key
}

function idFromKey(key: Uint8Array): PeerId {
  for (let i = 0; i < PREFIX.length; i++) {
    if (key[i] !== PREFIX[i]) throw new Error(`the key is not in the /${RECORD_NAMESPACE}/ namespace`)
  }
  return peerIdFromMultihash(Digest.decode(key.subarray(PREFIX.length)))
}

/** Signs a record of `addrs` (without /p2p/<own id>) with sequence number `seq`. */
export async function sealPeerRecord(
  privateKey: PrivateKey,
  addrs: readonly Multiaddr[],
  seq: number,
): Promise<Uint8Array> {
  const record = new PeerRecord({
    peerId: peerIdFromPrivateKey(privateKey),
    multiaddrs: [...addrs],
    seqNumber: BigInt(seq),
  })
  return (await RecordEnvelope.seal(record, privateKey)).marshal()
}

/** Checks the signature and the payload type; throws when either is wrong. */
export async function openPeerRecord(bytes: Uint8Array): Promise<OpenedRecord> {
  const envelope = await RecordEnvelope.openAndCertify(bytes, PeerRecord.DOMAIN)
  if (!equalBytes(envelope.payloadType, PeerRecord.CODEC)) throw new Error('the envelope holds no peer record')
  const record = PeerRecord.createFromProtobuf(envelope.payload)
  if (!peerIdFromPublicKey(envelope.publicKey).equals(record.peerId)) {
    throw new Error('the record is signed by another key than its peer id')
  }
  return { id: record.peerId, addrs: record.multiaddrs, seq: Number(record.seqNumber) }
}

/** The DHT validator: a valid signature by the key's own node, not expired, and small. */
export async function validatePeerRecord(key: Uint8Array, value: Uint8Array, now = Date.now()): Promise<void> {
  const id = idFromKey(key)
  if (value.length > RECORD_MAX_BYTES) throw new Error(`the record of ${id} is larger than ${RECORD_MAX_BYTES} bytes`)
  const rec = await openPeerRecord(value)
  if (rec.addrs.length > RECORD_MAX_ADDRS)
    throw new Error(`the record of ${id} has more than ${RECORD_MAX_ADDRS} addresses`)
  if (!rec.id.equals(id)) throw new Error(`the record of ${rec.id} is stored under the key of ${id}`)
  if (rec.seq < now - RECORD_MAX_AGE_MS) throw new Error(`the record of ${id} expired`)
  if (rec.seq > now + RECORD_MAX_SKEW_MS) throw new Error(`the record of ${id} is dated in the future`)
}

/** The DHT selector: the index of the newest valid record. */
export async function selectPeerRecord(_key: Uint8Array, values: Uint8Array[]): Promise<number> {
  let best = 0
  let bestSeq = -1
  for (const [i, v] of values.entries()) {
    const seq = await openPeerRecord(v).then(
      (r) => r.seq,
      () => -1,
    )
    if (seq > bestSeq) {
      best = i
      bestSeq = seq
    }
  }
  return best
}

/** Addresses worth publishing or answering with: no private ones unless `privateAddresses`. */
export function publishableAddrs(addrs: readonly Multiaddr[], privateAddresses: boolean): Multiaddr[] {
  return privateAddresses ? [...addrs] : addrs.filter((a) => !isPrivate(a))
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
