/**
 * Finds a Yamux stream by its id, and a closed one's place in the list, without scanning every open stream.
 *
 * Why: `@chainsafe/libp2p-yamux` scans the connection's open streams (`this.streams.find(s => s.streamId === id)`)
 * for every incoming data frame and window update (`handleStreamMessage`), and to check a new stream's id: twice for
 * each stream the remote opens (`incomingStream`, then `_newStream`), once for each opened here. `@libp2p/utils`'
 * AbstractStreamMuxer finds a closed stream's place with `findIndex(s => s === stream)`. With 20,000 forwarded
 * connections to one node each is ~10,000 predicate calls: per frame for every byte any of them moves, and several
 * times over for every connection opened and closed.
 *
 * How, without touching node_modules: for each muxer the batching wrapper creates (coalesce.ts), a map from stream
 * id to stream is kept beside the muxer's `streams` list, filled where the package tracks a stream
 * (`cleanUpStream`, called right after each push) and emptied where it stops tracking it (the stream's `close`). The
 * muxer gets its own versions of four methods, each doing the package's steps:
 * - `handleStreamMessage`: SYN → `incomingStream`, then the stream's `handleWindowUpdate` or `handleData`, a frame
 *   for a missing stream dropped, with a map lookup;
 * - `incomingStream`: a known id or a wrong parity goes to the package's method (which returns, or throws its
 *   error); a new id takes the package's next steps (reset when going away or at `maxInboundStreams`, else
 *   `_newStream`, count, `onRemoteStream`);
 * - `_newStream`: a known id goes to the package's method (its error); a new one is made by the package's method
 *   while `streams` reads as an empty list, so that its scan has nothing to look at (the map has answered);
 * - `cleanUpStream`: the package's listener, with the stream's place found at the front of the list (where a closing
 *   transport's streams are, one after another) or by `lastIndexOf` (a native scan without a predicate call per
 *   stream, from the end, where short-lived streams are), and its metrics counted the same way.
 *
 * A muxer whose `streams` was replaced by another array falls back to the package's methods. Installed on a new
 * muxer only (its list empty), so every stream it tracks has gone through `cleanUpStream`.
 * test/p2p/stream-index.test.ts checks both against the package.
 *
 * @example
 * ```ts
 * const muxer = create(maConn)
 * if (!indexStreams(muxer)) patchMissed('indexStreams', 'the muxer lacks a method this relies on')
 * ```
 */

/** What is used of a Yamux stream. */
interface IndexedStream {
  streamId: number
  direction: string
  handleWindowUpdate(frame: unknown): void
  handleData(frame: unknown): void
  addEventListener(type: 'close', listener: (evt: StreamCloseEvent) => void): void
}

/** What the package's listener reads of a stream's `close` event. */
interface StreamCloseEvent {
  error?: unknown
  local?: boolean
}

/** A Yamux frame header as the decoder hands it to `handleStreamMessage` and `sendFrame` takes it. */
interface Header {
  type: number
  flag: number
  streamID: number
  length: number
}

/** The parts of `@chainsafe/libp2p-yamux`'s YamuxMuxer (and `@libp2p/utils`' AbstractStreamMuxer) used here. */
interface IndexableMuxer {
  streams: IndexedStream[]
  client: boolean
  localGoAway?: unknown
  numInboundStreams: number
  maxInboundStreams: number
  metrics?: { increment(counts: Record<string, boolean>): void }
  handleStreamMessage(frame: { header: Header }): void
  incomingStream(id: number): void
  _newStream(id: number, state: number, direction: string): IndexedStream
  cleanUpStream(stream: IndexedStream): void
  onRemoteStream(stream: IndexedStream): void
  sendFrame(header: Header): void
  log: { (fmt: string, ...args: unknown[]): void; trace(fmt: string, ...args: unknown[]): void }
}

/** `@chainsafe/libp2p-yamux` FrameType.Data, FrameType.WindowUpdate, Flag.SYN, Flag.RST, StreamState.SYNReceived. */
const DATA = 0
const WINDOW_UPDATE = 1
const SYN = 1
const RST = 8
const SYN_RECEIVED = 2

/** What `streams` reads as while the package's `_newStream` runs for an id the map does not have. */
const NO_STREAMS: IndexedStream[] = Object.freeze([]) as unknown as IndexedStream[]

/** Each indexed muxer's map, for tests. */
const indexes = new WeakMap<object, Map<number, IndexedStream>>()

/** The stream ids `muxer` has indexed, or undefined when it is not indexed (tests). */
export function indexedStreamIds(muxer: unknown): number[] | undefined {
  const index = typeof muxer === 'object' && muxer !== null ? indexes.get(muxer) : undefined
  return index === undefined ? undefined : [...index.keys()]
}

const METHODS = ['handleStreamMessage', 'incomingStream', '_newStream', 'cleanUpStream', 'onRemoteStream', 'sendFrame']

/** Indexes `muxer`'s streams by id (idempotent); false when it lacks what this relies on or already has streams. */
export function indexStreams(muxer: unknown): boolean {
  const m = muxer as Partial<IndexableMuxer> & Record<string, unknown>
  if (typeof m !== 'object' || m === null) return false
  if (indexes.has(m)) return true
  const streams = m.streams
  if (!Array.isArray(streams) || streams.length > 0) return false
  if (METHODS.some((name) => typeof m[name] !== 'function')) return false
  const pkg = m as IndexableMuxer
  const handleMessage = pkg.handleStreamMessage
  const incoming = pkg.incomingStream
  const newStream = pkg._newStream
  const cleanUp = pkg.cleanUpStream
  const index = new Map<number, IndexedStream>()

  pkg.handleStreamMessage = function (this: IndexableMuxer, frame: { header: Header }): void {
    if (this.streams !== streams) {
      handleMessage.call(this, frame)
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

  pkg.incomingStream = function (this: IndexableMuxer, id: number): void {
    if (this.streams !== streams || this.client !== (id % 2 === 0) || index.has(id)) {
      incoming.call(this, id)
      return
    }
    this.log.trace('new incoming stream id=%s', id)
    const goingAway = this.localGoAway !== undefined
    if (goingAway || this.numInboundStreams >= this.maxInboundStreams) {
      if (!goingAway) this.log('maxIncomingStreams exceeded, forcing stream reset')
      this.sendFrame({ type: WINDOW_UPDATE, flag: RST, streamID: id, length: 0 })
      return
    }
    const stream = this._newStream(id, SYN_RECEIVED, 'inbound')
    this.numInboundStreams++
    this.onRemoteStream(stream)
  }

  pkg._newStream = function (this: IndexableMuxer, id: number, state: number, direction: string): IndexedStream {
    if (this.streams !== streams || index.has(id)) return newStream.call(this, id, state, direction)
    this.streams = NO_STREAMS
    try {
      return newStream.call(this, id, state, direction)
    } finally {
      this.streams = streams
    }
  }

  pkg.cleanUpStream = function (this: IndexableMuxer, stream: IndexedStream): void {
    if (this.streams !== streams) {
      cleanUp.call(this, stream)
      return
    }
    // the package never tracks two streams with one id (`_newStream` refuses a known one): keep the first anyway
    if (!index.has(stream.streamId)) index.set(stream.streamId, stream)
    stream.addEventListener('close', (evt) => {
      // each stream is pushed once, after it is made: the place found is its only one. The first place is looked
      // at first: a closing transport closes every stream in the list's order (the front one each time)
      const list = this.streams
      const at = list[0] === stream ? 0 : list.lastIndexOf(stream)
      if (at !== -1) list.splice(at, 1)
      if (index.get(stream.streamId) === stream) index.delete(stream.streamId)
      const end = evt.error == null ? 'stream_end' : evt.local === true ? 'stream_reset' : 'stream_abort'
      this.metrics?.increment({ [`${stream.direction}_${end}`]: true })
    })
    this.metrics?.increment({ [`${stream.direction}_stream`]: true })
  }

  indexes.set(m, index)
  return true
}
