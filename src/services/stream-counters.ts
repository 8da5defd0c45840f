/**
 * Counters of service streams, both ways: `incoming` streams are other nodes using this node's services, `outgoing`
 * streams are this node using another node's service (forwards, `warren connect`, the access port). Each stream is
 * counted per service and per peer: bytes in (received from the peer) and out (sent to it), streams open, and
 * stream ends by cause. Open streams report their bytes live through a sampler, so a transfer in progress shows.
 *
 * Listeners see every start and end (the Prometheus metrics and the log lines hang off them).
 */

import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Logger } from '../log.ts'
import { endedAlready } from '../p2p/stream-ended.ts'

export type StreamDirection = 'incoming' | 'outgoing'

/**
 * Why a stream ended: `ok` both sides finished cleanly; `reset` the far side reset it; `error` a local error cut it;
 * `refused` the host refused it (unknown service, not allowed, overloaded, bad header); `unreachable` the host could
 * not connect to its target; `revoked` the rules changed while it ran; `failed` the stream could not be opened.
 */
export type StreamEndCause = 'ok' | 'reset' | 'error' | 'refused' | 'unreachable' | 'revoked' | 'failed'

export interface StreamBytes {
  bytesIn: number
  bytesOut: number
}

export interface StreamTally extends StreamBytes {
  open: number
  /** Streams that ended, by cause (`refused` and `failed` streams never opened). */
  ends: Partial<Record<StreamEndCause, number>>
  /** Epoch ms of the latest stream start, end, or bytes seen moving. */
  lastUse?: number
}

export interface StreamCountersSnapshot {
  incoming: { total: StreamTally; services: Record<string, StreamTally>; peers: Record<string, StreamTally> }
  outgoing: { total: StreamTally; services: Record<string, StreamTally>; peers: Record<string, StreamTally> }
}

export interface StreamLabels {
  direction: StreamDirection
  service: string
  peer: string
}

/** Services and peers counted apart per direction, at most; streams of any more are counted under `other`. */
export const MAX_TALLIES = 1024
export const OTHER = 'other'

export interface StreamEnd extends StreamLabels, StreamBytes {
  /** The labels it was counted under: its own, or `other` past {@link MAX_TALLIES}. */
  counted: StreamLabels
  cause: StreamEndCause
  durationMs: number
  /** What cut it, when the cause is not `ok`. */
  reason?: string
  /** The port the client connected to, when the request carried it (transparent mode). */
  port?: number
}

export interface StreamCounterListener {
  started?(labels: StreamLabels): void
  /**
   * Bytes that moved since the previous report for this stream (sampled, and once more at the end), under the
   * labels it is counted under (`other` past {@link MAX_TALLIES}).
   */
  bytes?(labels: StreamLabels, delta: StreamBytes): void
  ended?(end: StreamEnd): void
  /** A connection to `peer` for an outgoing stream was made (or failed) in `ms`. */
  dialed?(peer: string, ms: number, ok: boolean): void
}

/** A stream being counted; `end` exactly once. */
export interface CountedStream {
  readonly labels: StreamLabels
  /** Reports the bytes that moved now (cumulative for this stream); cheap, call as often as wanted. */
  update(bytes: StreamBytes): void
  end(cause: StreamEndCause, bytes?: StreamBytes, reason?: string): void
}

function emptyTally(): StreamTally {
  return { bytesIn: 0, bytesOut: 0, open: 0, ends: {} }
}

interface Live {
  labels: StreamLabels
  /** The labels its tallies are kept under. */
  kept: StreamLabels
  /** Bytes already added to the tallies. */
  counted: StreamBytes
  sample: (() => StreamBytes) | undefined
  started: number
  /** Its three tallies (total, service, peer), looked up once: tallies are never dropped. */
  tallies: readonly StreamTally[]
}

/** The labels a stream's tallies are kept under and those tallies, per direction, service and peer. */
interface Entry {
  kept: StreamLabels
  tallies: readonly StreamTally[]
}

/** Entries remembered at most (a cache: past this many the map is emptied and refilled as streams come). */
const MAX_ENTRIES = 4 * MAX_TALLIES

export class StreamCounters {
  readonly #tallies = new Map<string, StreamTally>()
  /** Tallies per `direction\0kind`, to bound them. */
  readonly #kinds = new Map<string, number>()
  /**
   * Direction → service → peer → the entry of a stream with those labels: a new stream finds its tallies without
   * building their keys, and gets the same `kept` labels object as the streams before it (listeners may key on it).
   */
  readonly #entries: Record<StreamDirection, Map<string, Map<string, Entry>>> = {
    incoming: new Map(),
    outgoing: new Map(),
  }
  #entryCount = 0
  readonly #live = new Set<Live>()
  readonly #listeners = new Set<StreamCounterListener>()

  /** Adds a listener; returns its removal. */
  listen(l: StreamCounterListener): () => void {
    this.#listeners.add(l)
    return () => this.#listeners.delete(l)
  }

  /** `labels` with a service or peer that would exceed {@link MAX_TALLIES} tallies replaced by `other`. */
  #bounded(labels: StreamLabels): StreamLabels {
    const keep = (kind: 'service' | 'peer', name: string): string => {
      if (this.#tallies.has(`${labels.direction}\0${kind}\0${name}`)) return name
      const n = this.#kinds.get(`${labels.direction}\0${kind}`) ?? 0
      if (n >= MAX_TALLIES) return OTHER
      this.#kinds.set(`${labels.direction}\0${kind}`, n + 1)
      return name
    }
    return { direction: labels.direction, service: keep('service', labels.service), peer: keep('peer', labels.peer) }
  }

  /** The tallies of `labels` (total, service, peer), made when missing. */
  #talliesOf(labels: StreamLabels): StreamTally[] {
    return [
      `${labels.direction}\0total\0`,
      `${labels.direction}\0service\0${labels.service}`,
      `${labels.direction}\0peer\0${labels.peer}`,
    ].map((key) => {
      let t = this.#tallies.get(key)
      if (t === undefined) {
        t = emptyTally()
        this.#tallies.set(key, t)
      }
      return t
    })
  }

  #entryOf(labels: StreamLabels): Entry {
    let entry = this.#entries[labels.direction].get(labels.service)?.get(labels.peer)
    if (entry !== undefined) return entry
    if (this.#entryCount >= MAX_ENTRIES) {
      this.#entries.incoming.clear()
      this.#entries.outgoing.clear()
      this.#entryCount = 0
    }
    const byService = this.#entries[labels.direction]
    let byPeer = byService.get(labels.service)
    if (byPeer === undefined) {
      byPeer = new Map()
      byService.set(labels.service, byPeer)
    }
    const kept = this.#bounded(labels)
    entry = { kept, tallies: this.#talliesOf(kept) }
    byPeer.set(labels.peer, entry)
    this.#entryCount++
    return entry
  }

  #add(live: Live, now: StreamBytes): void {
    const dIn = Math.max(0, now.bytesIn - live.counted.bytesIn)
    const dOut = Math.max(0, now.bytesOut - live.counted.bytesOut)
    if (dIn === 0 && dOut === 0) return
    live.counted = { bytesIn: live.counted.bytesIn + dIn, bytesOut: live.counted.bytesOut + dOut }
    const at = Date.now()
    for (const t of live.tallies) {
      t.bytesIn += dIn
      t.bytesOut += dOut
      t.lastUse = at
    }
    for (const l of this.#listeners) l.bytes?.(live.kept, { bytesIn: dIn, bytesOut: dOut })
  }

  /**
   * Counts a stream that opened; `sample` (optional) reads its bytes so far, for the live figures; `info.port` (the
   * port the client connected to) is reported with its end.
   */
  start(labels: StreamLabels, sample?: () => StreamBytes, info: { port?: number } = {}): CountedStream {
    const { kept, tallies } = this.#entryOf(labels)
    const live: Live = { labels, kept, counted: { bytesIn: 0, bytesOut: 0 }, sample, started: Date.now(), tallies }
    this.#live.add(live)
    for (const t of tallies) {
      t.open++
      t.lastUse = live.started
    }
    for (const l of this.#listeners) l.started?.(labels)
    let ended = false
    return {
      labels,
      update: (bytes) => {
        if (!ended) this.#add(live, bytes)
      },
      end: (cause, bytes, reason) => {
        if (ended) return
        ended = true
        const final = bytes ?? live.sample?.() ?? live.counted
        this.#add(live, final)
        this.#live.delete(live)
        const now = Date.now()
        for (const t of tallies) {
          t.open--
          t.ends[cause] = (t.ends[cause] ?? 0) + 1
          t.lastUse = now
        }
        const end: StreamEnd = { ...labels, ...live.counted, cause, durationMs: now - live.started, counted: kept }
        if (reason !== undefined) end.reason = reason
        if (info.port !== undefined) end.port = info.port
        for (const l of this.#listeners) l.ended?.(end)
      },
    }
  }

  /** Counts a stream that ended before it opened (refused by the host, or could not be opened). */
  never(labels: StreamLabels, cause: 'refused' | 'failed' | 'unreachable', reason: string): void {
    this.start(labels).end(cause, { bytesIn: 0, bytesOut: 0 }, reason)
  }

  /** Reports how long getting a connection for an outgoing stream took. */
  dialed(peer: string, ms: number, ok: boolean): void {
    for (const l of this.#listeners) l.dialed?.(peer, ms, ok)
  }

  /** Reads every open stream's sampler, so the tallies hold the bytes moved up to now. */
  sample(): void {
    for (const live of this.#live) {
      if (live.sample !== undefined) this.#add(live, live.sample())
    }
  }

  /** The tallies now (samples the open streams first). */
  snapshot(): StreamCountersSnapshot {
    this.sample()
    const out: StreamCountersSnapshot = {
      incoming: { total: emptyTally(), services: {}, peers: {} },
      outgoing: { total: emptyTally(), services: {}, peers: {} },
    }
    for (const [key, t] of this.#tallies) {
      const [direction, kind, name] = key.split('\0') as [StreamDirection, 'total' | 'service' | 'peer', string]
      const copy: StreamTally = { ...t, ends: { ...t.ends } }
      if (kind === 'total') out[direction].total = copy
      else if (kind === 'service') out[direction].services[name] = copy
      else out[direction].peers[name] = copy
    }
    return out
  }
}

/** One log line for a stream end: who, which service, bytes each way, duration, cause. */
export function describeStreamEnd(e: StreamEnd): string {
  const who = `${e.direction === 'incoming' ? `${e.peer} → ${e.service}` : `${e.service} on ${e.peer}`}${e.port === undefined ? '' : ` (port ${e.port})`}`
  const base = `${e.direction} stream ended: ${who}, ${e.bytesIn} bytes in, ${e.bytesOut} out, ${e.durationMs} ms, ${e.cause}`
  return e.reason === undefined ? base : `${base} (${e.reason})`
}

const causeOf = (error: Error | undefined): StreamEndCause =>
  error === undefined ? 'ok' : error.name === 'StreamResetError' ? 'reset' : 'error'

/**
 * Counts an outgoing service stream until it closes: bytes out as they are handed to `send`, bytes in as the muxer
 * delivers them (`onData`). Both wrap the instance's own methods and pass every call through unchanged; no
 * `message` listener is added, since one would take data meant for the stream's reader.
 */
export function countStream(
  stream: Stream,
  counters: StreamCounters,
  labels: StreamLabels,
  info: { port?: number; sentEarly?: number } = {},
): CountedStream {
  // sentEarly: bytes sent before counting began (a dialer sends its client's first bytes before the host answers)
  const bytes = { bytesIn: 0, bytesOut: info.sentEarly ?? 0 }
  const counted = counters.start(labels, () => bytes, info.port === undefined ? {} : { port: info.port })
  const s = stream as Stream & { onData?: (data: Uint8Array | Uint8ArrayList) => void }
  const send = s.send.bind(s)
  s.send = (data) => {
    bytes.bytesOut += data.byteLength
    return send(data)
  }
  if (typeof s.onData === 'function') {
    const onData = s.onData.bind(s)
    s.onData = (data) => {
      bytes.bytesIn += data.byteLength
      onData(data)
    }
  }
  // a stream that ended before counting began (the host answered, then reset it at once, or the client went away
  // while the answer was on its way) dispatched its 'close' already: it ends here, or it would count as open for ever
  const ended = endedAlready(stream)
  if (ended !== undefined) counted.end(causeOf(ended.error), bytes, ended.error?.message)
  else {
    s.addEventListener(
      'close',
      (evt) => {
        const error = (evt as Event & { error?: Error }).error
        counted.end(causeOf(error), bytes, error?.message)
      },
      { once: true },
    )
  }
  return counted
}

/**
 * Logs every stream's life: an outgoing stream when it opens (written after the current turn), and each end (`warn`
 * when it ended abnormally). A refusal is not logged again here: it was logged where it was decided (the host's
 * "refused" line, the caller's error).
 */
export function logStreams(counters: StreamCounters, log: Logger): void {
  // an opening is written once the turn's socket writes have left (they flush in setImmediate, queued before
  // this), so that the line does not delay the stream's first bytes; an end writes the held lines first
  let held: string[] = []
  const flush = (): void => {
    const lines = held
    held = []
    for (const line of lines) log('info', line)
  }
  counters.listen({
    started: (s) => {
      if (s.direction !== 'outgoing') return
      held.push(`outgoing stream opened: ${s.service} on ${s.peer}`)
      if (held.length === 1) setImmediate(flush)
    },
    ended: (e) => {
      if (held.length > 0) flush()
      if (e.cause === 'refused' || e.cause === 'unreachable' || e.cause === 'failed') return
      log(e.cause === 'ok' ? 'info' : 'warn', describeStreamEnd(e))
    },
  })
}
