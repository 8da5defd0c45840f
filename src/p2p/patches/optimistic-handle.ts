/**
 * The listening side of multistream-select without its reader, for a new stream whose dialer named its protocol in
 * its first bytes: the two lines are answered from the stream's buffered data before libp2p sees the stream, and
 * libp2p takes its protocol as negotiated.
 *
 * Why: libp2p 3.3.11 hands every incoming stream to @libp2p/multistream-select 7.0.28's `handle()`, which wraps the
 * stream in a length-prefixed reader, reads the two lines one promise at a time, writes each answer with its own
 * `send`, and unwraps the reader again. On a new forwarded connection that is 60-70 µs of the serving end's time
 * between the frame that opens the stream and the service handler, on the path the client waits for; the dialer
 * already sent both lines with its first data (src/p2p/patches/optimistic-select.ts, and stock `select()` writes
 * them together too).
 *
 * How, without touching node_modules: `answering(yamux())` wraps the muxers' `safeDispatchEvent` so that a muxer's
 * `stream` event (a new incoming stream) is dispatched in a microtask, after the frames of the same read (the stream's
 * first data) were handled. If the stream's buffered data then starts with the complete header line and a line naming
 * a protocol this node handles (one with a handler in libp2p's registrar, the list `handle()` is given), both lines
 * are taken off the buffer, answered in one `send` with the bytes `handle()` would send, and the stream's `protocol`
 * is set: libp2p's `onIncomingStream` then skips `handle()` ("pre-negotiated") and goes on as after a negotiation
 * (stream limits, peer store, handler, middleware). Anything else is left to `handle()` untouched: data not yet there
 * or incomplete, another first line, `ls`, an unknown protocol (answered `na` there), a stream already closed or
 * reset, and a stream whose dialer's FIN came with the lines and nothing after them (the handler could not see that
 * end otherwise).
 *
 * @example
 * ```ts
 * createLibp2p({ streamMuxers: [answering(yamux())] })
 * ```
 */
import type { StreamMuxerFactory } from '@libp2p/interface'
import { varint } from 'multiformats'
import { Uint8ArrayList } from 'uint8arraylist'
import { bothLines, MAX_LINE, MSS_HEADER } from './optimistic-select.ts'
import { patchMissed } from './status.ts'

/** The parts of a libp2p stream (@libp2p/utils AbstractMessageStream) read and written here. */
interface AnswerableStream {
  protocol: string
  status: string
  readStatus: string
  remoteWriteStatus: string
  readBuffer: unknown
  send(data: Uint8Array): boolean
}

/** What the wrapper needs of libp2p's components. */
interface RegistrarComponents {
  registrar?: { getHandler(protocol: string): unknown }
}

/** True when `protocol` has a handler in `registrar` (`getHandler` throws for one that has none). */
function handledBy(registrar: RegistrarComponents['registrar'], protocol: string): boolean {
  try {
    return registrar?.getHandler(protocol) != null
  } catch {
    return false
  }
}

const utf8 = new TextDecoder()

/** One length-prefixed line of `buf` from byte `at`: its text and where the next starts; undefined if not whole. */
function peekLine(buf: Uint8ArrayList, at: number): { line: string; next: number } | undefined {
  if (buf.byteLength <= at) return undefined
  const head = buf.subarray(at, Math.min(buf.byteLength, at + 2))
  let len: number
  let n: number
  try {
    ;[len, n] = varint.decode(head)
  } catch {
    return undefined
  }
  if (len < 1 || len > MAX_LINE || buf.byteLength < at + n + len) return undefined
  if (buf.get(at + n + len - 1) !== 0x0a) return undefined
  return { line: utf8.decode(buf.subarray(at + n, at + n + len - 1)), next: at + n + len }
}

let answeredHere = 0

/**
 * One string per protocol name answered here, at most {@link MAX_NAMES} (only names this node handles get here).
 * libp2p counts a connection's streams of a protocol on each new stream by comparing every open stream's `protocol`
 * with the new one's (`countStreams`, libp2p 3.3.11): the same string compares by pointer, two equal strings
 * decoded apart by their characters, ~3× as long per stream (8,000 open: 71-76 µs a count against 201-209).
 */
const names = new Map<string, string>()
const MAX_NAMES = 256

function sameName(line: string): string {
  const known = names.get(line)
  if (known !== undefined) return known
  if (names.size < MAX_NAMES) names.set(line, line)
  return line
}

/** How many incoming streams this process answered with {@link answerOptimistically} (for tests and profiles). */
export function optimisticallyAnswered(): number {
  return answeredHere
}

/**
 * Answers the negotiation of a new incoming stream from its buffered first bytes, as `handle()` would; true when it
 * did (the stream's `protocol` is then set), false when the stream is left to `handle()`.
 */
export function answerOptimistically(stream: unknown, handles: (protocol: string) => boolean): boolean {
  const s = stream as AnswerableStream
  const buf = s.readBuffer
  if (!(buf instanceof Uint8ArrayList) || s.protocol !== '' || s.status !== 'open') return false
  if (s.readStatus !== 'readable' || typeof s.send !== 'function') return false
  const header = peekLine(buf, 0)
  if (header?.line !== MSS_HEADER) return false
  const named = peekLine(buf, header.next)
  if (named === undefined || !handles(named.line)) return false
  if (s.remoteWriteStatus !== 'writable' && buf.byteLength === named.next) return false
  // the answer first: a stream that cannot take it (it throws) keeps its lines for handle()
  s.send(bothLines(named.line))
  buf.consume(named.next)
  s.protocol = sameName(named.line)
  answeredHere++
  return true
}

/** An event emitter's `safeDispatchEvent` (main-event's TypedEventEmitter). */
type Dispatch = (this: unknown, type: string, init?: { detail?: unknown }) => boolean

/** The parts of a libp2p muxer (@libp2p/utils AbstractStreamMuxer) touched here. */
interface DispatchingMuxer {
  safeDispatchEvent?: Dispatch
}

/** Where a muxer keeps its node's protocol test: set on the muxers {@link answeringMuxer} was given. */
const PROTOCOLS = Symbol('warren.answeringProtocols')

/** Muxer classes whose `safeDispatchEvent` was wrapped (once per class, for every muxer of the process). */
const wrappedClasses = new WeakSet<object>()

/**
 * Makes one muxer answer its new incoming streams' negotiation itself where it can; false without the hook. The
 * dispatch is wrapped once on the muxer's class, so a connection costs one property (its node's protocol list), not
 * closures of its own: a relay holds thousands. Muxers without the property, a stock node's, dispatch as before.
 */
export function answeringMuxer(muxer: unknown, handles: (protocol: string) => boolean): boolean {
  const m = muxer as DispatchingMuxer & { [PROTOCOLS]?: (protocol: string) => boolean }
  if (typeof m.safeDispatchEvent !== 'function') return false
  const cls = Object.getPrototypeOf(m) as DispatchingMuxer | null
  if (cls === null) return false
  if (!wrappedClasses.has(cls)) {
    // the class's own method if it has one, else the inherited one as it is at each call (a later patch of the
    // shared event-emitter prototype, src/p2p/patches/unheard-events.ts, still applies)
    const own = (Object.hasOwn(cls, 'safeDispatchEvent') ? cls.safeDispatchEvent : undefined) as Dispatch | undefined
    const parent = Object.getPrototypeOf(cls) as { safeDispatchEvent: Dispatch }
    const dispatch: Dispatch =
      own ??
      function (this: unknown, type, init) {
        return parent.safeDispatchEvent.call(this, type, init)
      }
    cls.safeDispatchEvent = function (this: unknown, type, init) {
      const ours = (this as typeof m)[PROTOCOLS]
      if (type !== 'stream' || ours === undefined) return dispatch.call(this, type, init)
      queueMicrotask(() => {
        try {
          answerOptimistically(init?.detail, ours)
        } catch {
          // left to handle(), which reports what is wrong with the stream
        }
        dispatch.call(this, type, init)
      })
      return true
    }
    wrappedClasses.add(cls)
  }
  m[PROTOCOLS] = handles
  return true
}

/** Wraps a stream muxer factory (`yamux()`) so that each of its muxers gets {@link answeringMuxer}. */
export function answering<C>(factory: (components: C) => StreamMuxerFactory): (components: C) => StreamMuxerFactory {
  return (components) => {
    const muxers = factory(components)
    const registrar = (): RegistrarComponents['registrar'] => (components as RegistrarComponents).registrar
    // a membership test, not registrar.getProtocols(): that builds and sorts the list of every protocol per call
    const handles = (protocol: string): boolean => handledBy(registrar(), protocol)
    const create = muxers.createStreamMuxer.bind(muxers)
    muxers.createStreamMuxer = (maConn) => {
      const muxer = create(maConn)
      if (typeof registrar()?.getHandler !== 'function' || !answeringMuxer(muxer, handles)) {
        patchMissed('optimisticHandle', 'the muxer has no `safeDispatchEvent` or libp2p passed no registrar')
      }
      return muxer
    }
    return muxers
  }
}
