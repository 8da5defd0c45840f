/**
 * Keeping this node's record in the DHT: publish its signed peer record (relay circuit and direct addresses) once a
 * DHT server is known, again every `republishMs` (well before the record's one-hour expiry), and at once when its
 * addresses change (a new home relay, a new listen or observed address). A publish that reaches no DHT server is
 * logged and retried with back-off (1 s doubling up to 5 min); nothing is withdrawn silently.
 *
 * @example
 * ```ts
 * const pub = new RecordPublisher(libp2p, dht, privateKey, { republishMs: 1_200_000, privateAddresses: false, log })
 * pub.start()
 * pub.status()   // { lastSuccessAt, servers, addrs, … }
 * ```
 */

import type { PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { routingTableSize, type WarrenKadDHT } from '../p2p/dht.ts'
import { publishableAddrs, RECORD_MAX_ADDRS, recordKey, sealPeerRecord } from '../p2p/peer-record.ts'
import { circuitVia, shareableAddrs } from './host-local.ts'

const FIRST_RETRY_MS = 1_000
const MAX_RETRY_MS = 5 * 60_000
const CHANGE_DEBOUNCE_MS = 300
const PUT_TIMEOUT_MS = 30_000

export interface PublishStatus {
  /** Addresses in the latest published record. */
  addrs: string[]
  lastAttemptAt?: number
  lastSuccessAt?: number
  /** DHT servers that stored the latest record. */
  servers?: number
  /** How long the latest successful publish took, ms. */
  durationMs?: number
  /** Why the latest attempt failed (cleared by a success). */
  lastError?: string
  nextAt?: number
}

export interface PublishResult {
  ok: boolean
  servers: number
  durationMs: number
  bytes: number
  error?: string
}

export interface PublisherOptions {
  republishMs: number
  privateAddresses: boolean
  /** Config `relays` (and other configured DHT servers): circuit addresses through them are published as configured. */
  relays?: readonly string[]
  log?: Logger
}

export class RecordPublisher {
  readonly #libp2p: WarrenLibp2p
  readonly #dht: WarrenKadDHT
  readonly #key: PrivateKey
  readonly #opts: PublisherOptions
  readonly #log: NonNullable<PublisherOptions['log']>
  readonly #status: PublishStatus = { addrs: [] }
  #lastSeq = 0
  #retryMs = FIRST_RETRY_MS
  #timer: NodeJS.Timeout | undefined
  #running: Promise<PublishResult> | undefined
  #again = false
  #stopped = false
  #abort = new AbortController()
  #reportedWaiting = false

  constructor(libp2p: WarrenLibp2p, dht: WarrenKadDHT, privateKey: PrivateKey, opts: PublisherOptions) {
    this.#libp2p = libp2p
    this.#dht = dht
    this.#key = privateKey
    this.#opts = opts
    this.#log = opts.log ?? (() => {})
  }

  start(): void {
    this.#libp2p.addEventListener('self:peer:update', this.#onSelfUpdate)
    this.#routingTable()?.addEventListener('peer:add', this.#onServer)
    this.#schedule(0)
  }

  readonly #onSelfUpdate = (): void => {
    if (this.#stopped || this.#sameAddrs()) return
    this.#schedule(CHANGE_DEBOUNCE_MS)
  }

  /** A first DHT server became known: publish now if the record is not out yet. */
  readonly #onServer = (): void => {
    if (this.#stopped || this.#status.lastSuccessAt !== undefined) return
    this.#schedule(CHANGE_DEBOUNCE_MS)
  }

  #routingTable(): EventTarget | undefined {
    const rt = (this.#dht as { routingTable?: unknown }).routingTable
    return rt instanceof EventTarget ? rt : undefined
  }

  #addrs(): Multiaddr[] {
    const own = `/p2p/${this.#libp2p.peerId}`
    const bare = this.#libp2p.getMultiaddrs().map((a) => a.decapsulate(own))
    // never loopback or link-local (not even with privateAddresses): other hosts cannot use them
    const shareable = shareableAddrs(bare, (this.#opts.relays ?? []).map(circuitVia))
    return publishableAddrs(shareable, this.#opts.privateAddresses)
  }

  /** Why {@link #addrs} is empty: no address yet, or only private ones while privateAddresses is false. */
  #noAddrsWhy(): string {
    const own = `/p2p/${this.#libp2p.peerId}`
    const bare = shareableAddrs(this.#libp2p.getMultiaddrs().map((a) => a.decapsulate(own)))
    if (bare.length === 0 || this.#opts.privateAddresses) return 'this node has no publishable address yet'
    const some = bare.slice(0, 3).map(String).join(', ')
    return `every address of this node is private (${some}${bare.length > 3 ? ', …' : ''}) and discovery.privateAddresses is false, so none is published`
  }

  #sameAddrs(): boolean {
    const now = this.#addrs().map(String).sort()
    const last = [...this.#status.addrs].sort()
    return now.length === last.length && now.every((a, i) => a === last[i])
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#status.nextAt = Date.now() + ms
    this.#timer = setTimeout(() => void this.publishNow(), ms)
    this.#timer.unref()
  }

  /** Publishes now (one at a time; a call during a publish runs once more after it). */
  publishNow(): Promise<PublishResult> {
    if (this.#running !== undefined) {
      this.#again = true
      return this.#running
    }
    this.#running = this.#publish().finally(() => {
      this.#running = undefined
      if (this.#again && !this.#stopped) {
        this.#again = false
        this.#schedule(0)
      }
    })
    return this.#running
  }

  async #publish(): Promise<PublishResult> {
    const started = Date.now()
    this.#status.lastAttemptAt = started
    const addrs = this.#addrs()
    if (addrs.length === 0) return this.#failed(started, this.#noAddrsWhy(), 0, true)
    if (routingTableSize(this.#dht) === 0) {
      return this.#failed(started, 'no DHT server is known yet (they are the relays in `relays`)', 0, true)
    }
    this.#lastSeq = Math.max(Date.now(), this.#lastSeq + 1)
    const value = await sealPeerRecord(this.#key, addrs.slice(0, RECORD_MAX_ADDRS), this.#lastSeq)
    const stored = new Set<string>()
    const errors: string[] = []
    try {
      const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(PUT_TIMEOUT_MS)])
      for await (const ev of this.#dht.put(recordKey(this.#libp2p.peerId), value, { signal })) {
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') stored.add(ev.from.toString())
        else if (ev.name === 'QUERY_ERROR') {
          stored.delete(ev.from.toString())
          errors.push(ev.error.message)
        }
      }
    } catch (err) {
      if (stored.size === 0) errors.push((err as Error).message)
    }
    if (this.#stopped) return { ok: false, servers: 0, durationMs: Date.now() - started, bytes: value.length }
    if (stored.size === 0) {
      const why = errors.length > 0 ? [...new Set(errors)].slice(0, 3).join('; ') : 'no DHT server took it'
      return this.#failed(started, `no DHT server stored the record: ${why}`, value.length, false)
    }
    const durationMs = Date.now() - started
    this.#retryMs = FIRST_RETRY_MS
    this.#reportedWaiting = false
    Object.assign(this.#status, {
      addrs: addrs.map(String),
      lastSuccessAt: Date.now(),
      servers: stored.size,
      durationMs,
    })
    delete this.#status.lastError
    this.#log('debug', `published this node's record (${addrs.length} addresses) on ${stored.size} DHT server(s)`)
    this.#schedule(this.#opts.republishMs)
    return { ok: true, servers: stored.size, durationMs, bytes: value.length }
  }

  #failed(started: number, why: string, bytes: number, waiting: boolean): PublishResult {
    this.#status.lastError = why
    const retry = this.#retryMs
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS)
    // waiting for a first server or address is normal (right after the start, or with no relay configured): said
    // once at debug level, and `warren status` shows it; a publish that reached no server is a warning
    if (!waiting || !this.#reportedWaiting) {
      this.#log(
        waiting ? 'debug' : 'warn',
        `publishing this node's DHT record: ${why}; trying again in ${retry / 1000} s`,
      )
    }
    if (waiting) this.#reportedWaiting = true
    this.#schedule(retry)
    return { ok: false, servers: 0, durationMs: Date.now() - started, bytes, error: why }
  }

  status(): PublishStatus {
    return { ...this.#status, addrs: [...this.#status.addrs] }
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#abort.abort(new Error('stopping'))
    this.#libp2p.removeEventListener('self:peer:update', this.#onSelfUpdate)
    this.#routingTable()?.removeEventListener('peer:add', this.#onServer)
  }
}
