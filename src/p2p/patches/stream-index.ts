/**
 * Finds the stream of each incoming Yamux frame by its id instead of by scanning every open stream.
 *
 * Why: `@chainsafe/libp2p-yamux`'s `handleStreamMessage` looks the frame's stream up with
 * `this.streams.find(s => s.streamId === streamID)`, a scan of the connection's open streams for every data frame and
 * window update. With 64 forwarded connections to one node that was 2-3% of each daemon's CPU under HTTP load; with
 * 20,000 it is ~10,000 comparisons per frame, for every byte any of them moves.
 *
 * How, without touching node_modules: for each muxer the batching wrapper creates (coalesce.ts), the muxer's own
 * `streams` array gets `push` and `splice` of its own (the only two ways `@libp2p/utils`' AbstractStreamMuxer adds and
 * removes streams) that keep a map from stream id to stream beside it, and the muxer gets a `handleStreamMessage` of
 * its own that does what the package's does (SYN → `incomingStream`, then the stream's `handleWindowUpdate` or
 * `handleData`, a frame for a missing stream dropped) with a map lookup. A muxer whose `streams` was replaced by
 * another array falls back to the package's method. test/p2p/stream-index.test.ts checks both against the package.
 *
 * @example
 * ```ts
 * const muxer = create(maConn)
 * if (!indexStreams(muxer)) patchMissed('indexStreams', 'the muxer has no `streams`/`handleStreamMessage`')
 * ```
 */

/** What is used of a Yamux stream. */
interface IndexedStream {
  streamId: number
  handleWindowUpdate(frame: unknown): void
  handleData(frame: unknown): void
}

/** A Yamux frame as the decoder hands it to `handleStreamMessage`. */
interface Frame {
  header: { type: number; flag: number; streamID: number; length: number }
}

/** The parts of `@chainsafe/libp2p-yamux`'s YamuxMuxer used here. */
interface IndexableMuxer {
  streams: IndexedStream[]
  handleStreamMessage(frame: Frame): void
  incomingStream(id: number): void
  log: { trace(fmt: string, ...args: unknown[]): void }
}

/** `@chainsafe/libp2p-yamux` FrameType.Data, FrameType.WindowUpdate and Flag.SYN. */
const DATA = 0
const WINDOW_UPDATE = 1
const SYN = 1

/** Each indexed muxer's map, for tests. */
const indexes = new WeakMap<object, Map<number, IndexedStream>>()

/** The stream ids `muxer` has indexed, or undefined when it is not indexed (tests). */
export function indexedStreamIds(muxer: unknown): number[] | undefined {
  const index = typeof muxer === 'object' && muxer !== null ? indexes.get(muxer) : undefined
  return index === undefined ? undefined : [...index.keys()]
}

/** Indexes `muxer`'s streams by id (idempotent); false when it lacks what this relies on. */
export function indexStreams(muxer: unknown): boolean {
  const m = muxer as Partial<IndexableMuxer>
  if (typeof m !== 'object' || m === null) return false
  if (indexes.has(m)) return true
  const streams = m.streams
  const original = m.handleStreamMessage
  if (!Array.isArray(streams) || typeof original !== 'function' || typeof m.incomingStream !== 'function') return false
  const index = new Map<number, IndexedStream>()
  /** Ids pushed more than once (never, unless the package changes): only their removal looks for another. */
  const twice = new Set<number>()
  const add = (s: IndexedStream): void => {
    // the package's scan finds the first stream with an id: a later one with the same id never shadows it
    if (!index.has(s.streamId)) index.set(s.streamId, s)
    else twice.add(s.streamId)
  }
  for (const s of streams) add(s)
  const push = streams.push
  const splice = streams.splice
  Object.defineProperty(streams, 'push', {
    configurable: true,
    writable: true,
    value(this: IndexedStream[], ...items: IndexedStream[]): number {
      for (const s of items) add(s)
      return push.apply(this, items)
    },
  })
  Object.defineProperty(streams, 'splice', {
    configurable: true,
    writable: true,
    value(this: IndexedStream[], ...args: [number, number?, ...IndexedStream[]]): IndexedStream[] {
      const removed = (splice as (...a: unknown[]) => IndexedStream[]).apply(this, args)
      for (const s of removed) {
        if (index.get(s.streamId) !== s) continue
        index.delete(s.streamId)
        if (!twice.has(s.streamId)) continue
        const next = this.find((x) => x.streamId === s.streamId)
        if (next !== undefined) index.set(next.streamId, next)
      }
      for (const s of args.slice(2) as IndexedStream[]) add(s)
      return removed
    },
  })
  m.handleStreamMessage = function (this: IndexableMuxer, frame: Frame): void {
    if (this.streams !== streams) {
      original.call(this, frame)
      return
    }
    const { streamID, flag, type } = frame.header
    if ((flag & SYN) === SYN) this.incomingStream(streamID)
    const stream = index.get(streamID)
    if (stream === undefined) {
      this.log.trace('frame for missing stream id=%s', streamID)
      return
    }
    if (type === WINDOW_UPDATE) stream.handleWindowUpdate(frame)
    else if (type === DATA) stream.handleData(frame)
    else throw new Error('unreachable')
  }
  indexes.set(m, index)
  return true
}
