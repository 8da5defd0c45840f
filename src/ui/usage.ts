/**
 * Who used which of this node's services: a tally per service and peer of incoming streams (streams asked for,
 * refused ones included; open now; bytes each way; ends by cause; last use), kept since the daemon started, for the
 * dashboard's "Who used them". The node's own counters keep services and peers apart; this keeps the pairs.
 *
 * At most {@link MAX_PAIRS} pairs are kept; streams of further pairs are counted under their service and the peer
 * `other`. Bytes arrive under the labels the counters keep (`other` past their own bound of 1024 peers).
 */
import type { StreamBytes, StreamCounters, StreamEndCause, StreamLabels } from '../services/stream-counters.ts'

export const MAX_PAIRS = 4096
const OTHER = 'other'

export interface UsageTally {
  service: string
  peer: string
  /** Streams asked for (refused ones included). */
  streams: number
  open: number
  bytesIn: number
  bytesOut: number
  ends: Partial<Record<StreamEndCause, number>>
  /** Epoch ms of the latest start, end or bytes seen moving. */
  lastUse: number
}

export interface ServiceUsage {
  /** The pairs, most recently used first. */
  list(): UsageTally[]
  close(): void
}

export function serviceUsage(counters: StreamCounters): ServiceUsage {
  const pairs = new Map<string, UsageTally>()
  const tally = (l: StreamLabels): UsageTally | undefined => {
    if (l.direction !== 'incoming') return undefined
    let key = `${l.service}\0${l.peer}`
    let t = pairs.get(key)
    if (t !== undefined) return t
    const peer = pairs.size >= MAX_PAIRS ? OTHER : l.peer
    key = `${l.service}\0${peer}`
    t = pairs.get(key)
    if (t === undefined) {
      t = { service: l.service, peer, streams: 0, open: 0, bytesIn: 0, bytesOut: 0, ends: {}, lastUse: Date.now() }
      pairs.set(key, t)
    }
    return t
  }
  const close = counters.listen({
    started: (l) => {
      const t = tally(l)
      if (t === undefined) return
      t.streams++
      t.open++
      t.lastUse = Date.now()
    },
    bytes: (l, d: StreamBytes) => {
      const t = tally(l)
      if (t === undefined) return
      t.bytesIn += d.bytesIn
      t.bytesOut += d.bytesOut
      t.lastUse = Date.now()
    },
    ended: (e) => {
      const t = tally(e)
      if (t === undefined) return
      t.open = Math.max(0, t.open - 1)
      t.ends[e.cause] = (t.ends[e.cause] ?? 0) + 1
      t.lastUse = Date.now()
    },
  })
  return {
    list: () => [...pairs.values()].map((t) => ({ ...t, ends: { ...t.ends } })).sort((a, b) => b.lastUse - a.lastUse),
    close,
  }
}
