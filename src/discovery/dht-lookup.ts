/**
 * Reading a node's record from the DHT: one `GET_VALUE` query for `/warren-peer/<id>`. kad-dht checks each answer
 * with Warren's validator (signature, key, age); of the valid ones the newest wins. The query ends once
 * {@link ENOUGH_RECORDS} servers (or every known one, if fewer) returned a record, or {@link GRACE_MS} after the
 * first record, whichever comes first.
 *
 * @example
 * ```ts
 * const found = await findPeerRecord(libp2p.services.dht, id, AbortSignal.timeout(5000))
 * if ('record' in found) console.log(found.record.addrs)
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import { routingTableSize, type WarrenKadDHT } from '../p2p/dht.ts'
import { type OpenedRecord, openPeerRecord, recordKey } from '../p2p/peer-record.ts'

const GRACE_MS = 100
/** Records from this many servers end the query at once (the newest of them wins). */
const ENOUGH_RECORDS = 3

export type RecordSearch =
  | { record: OpenedRecord; servers: number }
  /** Why nothing was found, in words. */
  | { miss: string; servers: number }

export async function findPeerRecord(dht: WarrenKadDHT, id: PeerId, signal: AbortSignal): Promise<RecordSearch> {
  const known = routingTableSize(dht)
  const values: Uint8Array[] = []
  const answered = new Set<string>()
  const grace = new AbortController()
  let graceTimer: NodeJS.Timeout | undefined
  try {
    for await (const ev of dht.get(recordKey(id), { signal: AbortSignal.any([signal, grace.signal]) })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'GET_VALUE') {
        answered.add(ev.from.toString())
        if (ev.record != null) values.push(ev.record.value)
      } else if (ev.name === 'VALUE') values.push(ev.value)
      // enough servers agree (or can disagree): stop; else give the others GRACE_MS after the first record
      if (values.length >= Math.min(ENOUGH_RECORDS, Math.max(1, known))) break
      if (values.length > 0 && graceTimer === undefined) {
        graceTimer = setTimeout(() => grace.abort(new Error('grace period over')), GRACE_MS)
      }
    }
  } catch (err) {
    // the caller's deadline, or kad-dht failing to correct an outdated server after the query: use what arrived
    if (signal.aborted && values.length === 0) throw err
  } finally {
    clearTimeout(graceTimer)
  }
  let best: OpenedRecord | undefined
  for (const v of values) {
    const rec = await openPeerRecord(v).catch(() => undefined)
    if (rec?.id.equals(id) && (best === undefined || rec.seq > best.seq)) best = rec
  }
  if (best !== undefined) return { record: best, servers: answered.size }
  if (known === 0) return { miss: 'no DHT server is known yet (they are the relays in `relays`)', servers: 0 }
  return {
    miss:
      answered.size === 0
        ? `none of the ${known} DHT server(s) known answered`
        : `no record on the ${answered.size} DHT server(s) asked`,
    servers: answered.size,
  }
}
