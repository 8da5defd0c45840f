/**
 * The datastore of a DHT node with a bound on stored records: kad-dht keeps every valid record it is asked to store
 * (`PUT_VALUE`), and Warren's records are cheap to make (a fresh Ed25519 key signs its own), so a server without a
 * bound could be made to hold any number of them. Past `maxRecords`, storing a new record evicts the one stored
 * longest ago (a record that is stored again moves to the back); nodes republish theirs within `republishMs`, so an
 * evicted honest record comes back. Other keys (the peer store) are stored as in `MemoryDatastore`.
 *
 * A value is kept in a buffer of its own size: the peer store's entries come encoded into slices of Node's shared buffer
 * pool (64 KiB slabs in Node 24), and one entry kept as it came keeps its whole slab alive (UPSTREAM.md row 27).
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ datastore: new RecordStore({ maxRecords: 50_000 }), … })
 * ```
 */
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'

/** Records a DHT server keeps by default: 50,000 records of at most 4 KiB is at most 200 MiB (200-300 bytes is usual). */
export const DEFAULT_MAX_RECORDS = 50_000

/** Where kad-dht stores records (its `datastorePrefix` is `/dht`, records go under `/record`). */
const RECORD_PREFIX = '/dht/record/'

export class RecordStore extends MemoryDatastore {
  readonly maxRecords: number
  /** Record keys, oldest store first. */
  readonly #order = new Set<string>()
  evicted = 0

  constructor(opts: { maxRecords?: number } = {}) {
    super()
    this.maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS
  }

  /** Records stored now. */
  get records(): number {
    return this.#order.size
  }

  override put(key: Key, val: Uint8Array, options?: { signal?: AbortSignal }): ReturnType<MemoryDatastore['put']> {
    const k = key.toString()
    if (k.startsWith(RECORD_PREFIX)) {
      this.#order.delete(k)
      while (this.#order.size >= this.maxRecords) {
        const oldest = this.#order.values().next().value as string
        this.#order.delete(oldest)
        super.delete(new Key(oldest))
        this.evicted++
      }
      this.#order.add(k)
    }
    return super.put(key, val.byteLength === val.buffer.byteLength ? val : new Uint8Array(val), options)
  }

  override delete(key: Key, options?: { signal?: AbortSignal }): ReturnType<MemoryDatastore['delete']> {
    this.#order.delete(key.toString())
    return super.delete(key, options)
  }
}
