/**
 * The browser node's Ed25519 key, made in the browser and kept in IndexedDB (database `warren`, store `keys`, record
 * `node`: the libp2p protobuf encoding). The key never leaves the tab: nothing here sends it anywhere.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'

const DB = 'warren'
const STORE = 'keys'

// the few IndexedDB types used here (the project compiles without the DOM library)
interface IDBRequest<T> {
  result: T
  error: Error | null
  onsuccess: (() => void) | null
  onerror: (() => void) | null
}
interface IDBObjectStore {
  get(key: string): IDBRequest<unknown>
  add(value: unknown, key: string): IDBRequest<unknown>
}
interface IDBDatabase {
  createObjectStore(name: string): IDBObjectStore
  transaction(store: string, mode: 'readonly' | 'readwrite'): { objectStore(name: string): IDBObjectStore }
  close(): void
}
interface IDBOpenRequest extends IDBRequest<IDBDatabase> {
  onupgradeneeded: (() => void) | null
}
interface IDBFactory {
  open(name: string, version: number): IDBOpenRequest
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'))
  })
}

async function openDb(): Promise<IDBDatabase> {
  const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB
  if (factory === undefined) throw new Error('this environment has no IndexedDB')
  const req = factory.open(DB, 1)
  req.onupgradeneeded = () => req.result.createObjectStore(STORE)
  return request(req)
}

/**
 * The key stored under `name` (default `node`), made and stored on first use. Without IndexedDB (a private window
 * that refuses it) this throws ERR_KEY_INVALID rather than making a key that changes on every load.
 */
export async function loadOrCreateKey(name = 'node'): Promise<PrivateKey> {
  let db: IDBDatabase
  try {
    db = await openDb()
  } catch (err) {
    throw new WarrenError(
      'ERR_KEY_INVALID',
      `cannot open IndexedDB to keep this browser's key: ${(err as Error).message}`,
      {
        hint: 'Allow site storage for this page, or pass a key to startBrowserNode({ key }).',
        cause: err,
      },
    )
  }
  try {
    const stored = await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(name))
    if (stored instanceof Uint8Array) {
      try {
        return privateKeyFromProtobuf(stored)
      } catch (err) {
        throw new WarrenError(
          'ERR_KEY_INVALID',
          `the key stored in IndexedDB (${DB}/${STORE}/${name}) does not decode`,
          {
            hint: "Clear this site's storage to make a new key (the node id will change).",
            cause: err,
          },
        )
      }
    }
    const key = await generateKeyPair('Ed25519')
    await request(db.transaction(STORE, 'readwrite').objectStore(STORE).add(privateKeyToProtobuf(key), name))
    return key
  } finally {
    db.close()
  }
}
