/**
 * Optimistic protocol selection: a new outbound stream whose protocol is named with {@link OPTIMISTIC_SELECT} carries
 * multistream-select's two lines (the `/multistream/1.0.0` header and the protocol) and whatever the caller sends
 * next in its first frames, instead of waiting a round trip for the far side's answer before the caller may write.
 *
 * Why: libp2p 3.3.11 documents `negotiateFully: false` on `newStream` as exactly this, but
 * @libp2p/multistream-select 7.0.28 does not implement it: `select()` always writes both lines and waits for both
 * answers, so every new stream costs a round trip through the connection before its first byte of data leaves.
 *
 * How, without touching node_modules: `optimistic(yamux())` wraps each muxer's `createStream`. For a stream asked for
 * with {@link OPTIMISTIC_SELECT} and a single protocol (libp2p passes that protocol to the muxer), the wrapper sends
 * the two lines at once and sets the stream's `protocol`, so libp2p's `newStream` takes it as pre-negotiated and skips
 * `select()`. The far side is a stock `handle()`: it echoes both lines (or answers `na`) and hands the rest to its
 * protocol handler, as it would after a full negotiation; the wire bytes are the same as `select()`'s. The answers
 * are taken off the front of the stream's incoming data (its `onData`) before any byte reaches the reader: both
 * lines echoed, the rest passes on unchanged; `na` aborts the stream with an `UnsupportedProtocolError` (the error
 * `newStream` throws after a full negotiation); anything else aborts it with a {@link NegotiationError}. The caller
 * therefore learns of an unsupported protocol when it reads, not from `newStream`.
 *
 * The stream's FIN waits for the answer: `close()` called before both lines came back sends its FIN once they are in
 * (or once the stream ended otherwise); bytes sent before it leave at once. A stock `handle()` loses a
 * stream whose bytes and FIN all arrived before it started reading (@libp2p/utils 7.4.1: draining the read buffer
 * after the far side's FIN closes the read side, and `handle()`'s `unwrap` then cannot put the bytes after the
 * protocol line back, so it throws and the stream is reset). That happens to the first streams of a new connection,
 * which the far side holds until it has finished setting the connection up; a full negotiation never sends a FIN
 * that early, and with the FIN held back this does not either.
 *
 * Only streams that carry the marker are selected this way: a caller opts in where it handles a refusal that arrives
 * on the stream (src/services/dial.ts). Every other stream, and `negotiateFully: false` without the marker, is
 * negotiated by libp2p itself.
 *
 * @example
 * ```ts
 * createLibp2p({ streamMuxers: [optimistic(yamux())] })
 * const stream = await conn.newStream('/my/1.0.0', { [OPTIMISTIC_SELECT]: true } as NewStreamOptions)
 * stream.send(request) // leaves with the protocol name
 * ```
 */
import { type AbortOptions, type StreamMuxerFactory, UnsupportedProtocolError } from '@libp2p/interface'
import { varint } from 'multiformats'
import { Uint8ArrayList } from 'uint8arraylist'
import { patchMissed } from './status.ts'

/** Option key (a symbol, carried through libp2p's option spreads) that asks for optimistic selection. */
export const OPTIMISTIC_SELECT = Symbol.for('warren.optimisticSelect')

/** multistream-select's protocol id, the first line each side sends. */
export const MSS_HEADER = '/multistream/1.0.0'
/** multistream-select's longest line (@libp2p/multistream-select MAX_PROTOCOL_LENGTH). */
export const MAX_LINE = 1024

/** The far side answered neither the protocol nor `na`. */
export class NegotiationError extends Error {
  override name = 'NegotiationError'
}

/** The parts of a libp2p stream touched here. */
interface PatchableStream {
  protocol: string
  status: string
  send(data: Uint8Array): boolean
  close(options?: AbortOptions): Promise<void>
  onData?: (data: Uint8Array | Uint8ArrayList) => void
  abort(err: Error): void
  addEventListener(type: 'close', listener: () => void): void
  removeEventListener(type: 'close', listener: () => void): void
}

/** The parts of a libp2p muxer touched here. */
interface PatchableMuxer {
  createStream?: (options?: Record<string | symbol, unknown>) => Promise<PatchableStream>
}

/** `line\n` with its uvarint length in front, as multistream-select frames each line. */
function lpLine(line: string): Uint8Array {
  const body = new TextEncoder().encode(`${line}\n`)
  const n = varint.encodingLength(body.length)
  const out = new Uint8Array(n + body.length)
  varint.encodeTo(body.length, out, 0)
  out.set(body, n)
  return out
}

/** The header line and `protocol`'s line in one buffer, by protocol: what a dialer sends and a listener echoes. */
const bothByProtocol = new Map<string, Uint8Array>()

/** The two lines of a negotiation of `protocol` (the same bytes each time: never written into). */
export function bothLines(protocol: string): Uint8Array {
  let both = bothByProtocol.get(protocol)
  if (both === undefined) {
    const header = lpLine(MSS_HEADER)
    const line = lpLine(protocol)
    both = new Uint8Array(header.length + line.length)
    both.set(header)
    both.set(line, header.length)
    if (bothByProtocol.size < 256) bothByProtocol.set(protocol, both)
  }
  return both
}

/** Takes one length-prefixed line off `buf`: its text without the newline, or undefined while incomplete. */
function takeLine(buf: Uint8ArrayList): string | undefined {
  if (buf.byteLength === 0) return undefined
  const head = buf.subarray(0, Math.min(buf.byteLength, 2))
  let len: number
  let n: number
  try {
    ;[len, n] = varint.decode(head)
  } catch {
    if (head.length < 2) return undefined
    throw new NegotiationError('the protocol answer has a malformed length')
  }
  if (len < 1 || len > MAX_LINE) throw new NegotiationError(`the protocol answer has a length of ${len}`)
  if (buf.byteLength < n + len) return undefined
  const body = buf.subarray(n, n + len)
  buf.consume(n + len)
  if (body[len - 1] !== 0x0a) throw new NegotiationError('the protocol answer does not end with a newline')
  return new TextDecoder().decode(body.subarray(0, len - 1))
}

/** Resolves with `promise`, or rejects with the signal's reason once it aborts. */
function untilAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/**
 * Sends the negotiation of `protocol` on a new stream and strips the far side's answers from its incoming data;
 * false when the stream lacks the hooks (it is then left to libp2p's own negotiation).
 */
export function selectOptimistically(stream: unknown, protocol: string): boolean {
  const s = stream as PatchableStream
  if (
    typeof s.onData !== 'function' ||
    typeof s.send !== 'function' ||
    typeof s.close !== 'function' ||
    typeof s.addEventListener !== 'function' ||
    s.protocol !== ''
  ) {
    return false
  }
  // put back by assignment, never by `delete`: deleting a property turns the stream into a dictionary-mode object
  // (3 KiB more per open stream); an own property that is the inherited method behaves the same
  const originalOnData = s.onData
  const onData = s.onData.bind(s)
  const answers = new Uint8ArrayList()
  let seen = 0 // lines of the answer taken so far
  let negotiated = false
  // the FIN waits until the answer is in or the stream ended otherwise (a refusal aborts it, a reset closes it)
  let answer = (): void => {}
  const answered = new Promise<void>((resolve) => {
    answer = resolve
  })
  const originalClose = s.close
  const close = s.close.bind(s)
  const onClose = (): void => answer()
  const heldClose = async (options?: AbortOptions): Promise<void> => {
    if (!negotiated && s.status === 'open') await untilAborted(answered, options?.signal)
    return close(options)
  }
  const release = (): void => {
    s.removeEventListener('close', onClose)
    if (s.close === heldClose) s.close = originalClose
    answer()
  }
  const strip = (data: Uint8Array | Uint8ArrayList): void => {
    if (negotiated) {
      onData(data) // a wrapper added after this one still calls this one
      return
    }
    answers.append(data)
    try {
      for (let line = takeLine(answers); line !== undefined; line = takeLine(answers)) {
        seen++
        if (seen === 1) {
          if (line !== MSS_HEADER) throw new NegotiationError(`the far side answered "${line}", not ${MSS_HEADER}`)
          continue
        }
        if (line === 'na') throw new UnsupportedProtocolError(`the far side does not support ${protocol}`)
        if (line !== protocol) throw new NegotiationError(`the far side answered "${line}" for ${protocol}`)
        negotiated = true
        if (s.onData === strip) s.onData = originalOnData
        release()
        if (answers.byteLength > 0) onData(answers)
        return
      }
    } catch (err) {
      answers.consume(answers.byteLength)
      s.abort(err as Error)
      release()
    }
  }
  s.onData = strip
  s.close = heldClose
  s.addEventListener('close', onClose)
  s.send(bothLines(protocol))
  s.protocol = protocol
  return true
}

/** Wraps one muxer's `createStream` so that streams asked for with {@link OPTIMISTIC_SELECT} are selected early. */
export function optimisticMuxer(muxer: unknown): void {
  const m = muxer as PatchableMuxer
  if (typeof m.createStream !== 'function') {
    patchMissed('optimisticSelect', 'the muxer has no `createStream`')
    return
  }
  const createStream = m.createStream.bind(m)
  m.createStream = async (options) => {
    const stream = await createStream(options)
    const protocol = options?.protocol
    if (options?.[OPTIMISTIC_SELECT] === true && typeof protocol === 'string') {
      if (!selectOptimistically(stream, protocol)) {
        patchMissed(
          'optimisticSelect',
          'a new stream has no `onData`, `send`, `close`, `addEventListener` or empty `protocol`',
        )
      }
    }
    return stream
  }
}

/** Wraps a stream muxer factory (`yamux()`) so that each of its muxers gets {@link optimisticMuxer}. */
export function optimistic<C>(factory: (components: C) => StreamMuxerFactory): (components: C) => StreamMuxerFactory {
  return (components) => {
    const muxers = factory(components)
    const create = muxers.createStreamMuxer.bind(muxers)
    muxers.createStreamMuxer = (maConn) => {
      const muxer = create(maConn)
      optimisticMuxer(muxer)
      return muxer
    }
    return muxers
  }
}
