/**
 * The framing a `stream.open` connection carries after its result line, both ways, and {@link FramedStream}: a
 * Duplex over the API socket that speaks it. The daemon hands one to `pipeStream` (src/p2p/pipe.ts); the
 * client returns one from `WarrenClient.openStream`.
 *
 * A Unix socket has no reset: closing it always looks like a clean end to the other side. So the bytes of the
 * service travel in frames, and a stream that fails says so in a frame of its own.
 *
 * Each frame is a 1-byte type, a 4-byte big-endian payload length, then the payload:
 *
 * | type | name  | payload                                                                   |
 * |------|-------|---------------------------------------------------------------------------|
 * | 0    | DATA  | 0-65536 bytes of the stream (an empty one means nothing)                  |
 * | 1    | END   | none: this direction is finished, like a FIN (the other one keeps going)  |
 * | 2    | ABORT | UTF-8 JSON `{"code":"ERR_…","message":"…"}`, at most 65536 bytes: the stream failed |
 *
 * Rules, the same for both sides:
 * - Each direction is DATA frames, then END (a clean end) or ABORT. Nothing but ABORT may follow END.
 * - ABORT ends the whole stream, both directions; the side that sends it then closes the socket.
 * - After it has sent END and received END, a side closes its write side of the socket. A socket that ends or
 *   closes before both ENDs went through is a failure, as if an ABORT had come: the other side went away.
 * - A frame of unknown type, a payload over 65536 bytes, or an END with a payload is a protocol error: the side
 *   that sees it sends ABORT and closes.
 *
 * Back-pressure: a FramedStream reads the socket only while its own reader takes data, and acknowledges a write
 * only once the socket has room, so neither side buffers more than a socket buffer and a frame.
 */
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { WarrenError } from '../errors.ts'

export const FRAME_DATA = 0
export const FRAME_END = 1
export const FRAME_ABORT = 2
export const FRAME_HEADER_BYTES = 5
/** The largest payload a frame may carry. */
export const MAX_FRAME_PAYLOAD = 64 * 1024

/** What an ABORT frame says: an error code (`ERR_…`) and a message a user can read. */
export interface AbortInfo {
  code: string
  message: string
}

export type FrameEvent = { kind: 'data'; bytes: Buffer } | { kind: 'end' } | { kind: 'abort'; info: AbortInfo }

function header(type: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  h[0] = type
  h.writeUInt32BE(length, 1)
  return h
}

/** The END frame. */
export function encodeEnd(): Buffer {
  return header(FRAME_END, 0)
}

/** An ABORT frame; a message too long for one frame is cut short. */
export function encodeAbort(info: AbortInfo): Buffer {
  let message = info.message
  let json = Buffer.from(JSON.stringify({ code: info.code, message }))
  while (json.length > MAX_FRAME_PAYLOAD) {
    message = `${message.slice(0, Math.floor(message.length / 2))}…`
    json = Buffer.from(JSON.stringify({ code: info.code, message }))
  }
  return Buffer.concat([header(FRAME_ABORT, json.length), json])
}

/** DATA frames for `bytes` (split at {@link MAX_FRAME_PAYLOAD}), header and payload buffers in order. */
export function encodeData(bytes: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let off = 0; off < bytes.length; off += MAX_FRAME_PAYLOAD) {
    const piece = bytes.subarray(off, off + MAX_FRAME_PAYLOAD)
    out.push(header(FRAME_DATA, piece.length), piece)
  }
  return out
}

function parseAbort(payload: Buffer): AbortInfo {
  const text = payload.toString('utf8')
  try {
    const j = JSON.parse(text) as { code?: unknown; message?: unknown }
    if (typeof j.message === 'string' && j.message !== '') {
      return { code: typeof j.code === 'string' ? j.code : 'ERR_STREAM_ABORTED', message: j.message }
    }
  } catch {
    // not JSON: the text itself is the best message there is
  }
  return { code: 'ERR_STREAM_ABORTED', message: text === '' ? 'aborted without a reason' : text }
}

/** Frames in, events out. DATA payloads are passed on as they arrive, without waiting for the whole frame. */
export class FrameDecoder {
  #head = Buffer.alloc(FRAME_HEADER_BYTES)
  #headFill = 0
  /** Type of the frame whose payload is being read, or -1 between frames. */
  #type = -1
  #left = 0
  #abortParts: Buffer[] = []

  /** Decodes a chunk; throws a protocol error (ERR_API) on a malformed frame. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = []
    let pos = 0
    while (pos < chunk.length) {
      if (this.#type === -1) {
        const n = Math.min(FRAME_HEADER_BYTES - this.#headFill, chunk.length - pos)
        chunk.copy(this.#head, this.#headFill, pos, pos + n)
        this.#headFill += n
        pos += n
        if (this.#headFill < FRAME_HEADER_BYTES) break
        this.#headFill = 0
        const type = this.#head[0]!
        const length = this.#head.readUInt32BE(1)
        if (type !== FRAME_DATA && type !== FRAME_END && type !== FRAME_ABORT) {
          throw frameError(`unknown frame type ${type}`)
        }
        if (length > MAX_FRAME_PAYLOAD) throw frameError(`a frame of ${length} bytes (at most ${MAX_FRAME_PAYLOAD})`)
        if (type === FRAME_END) {
          if (length !== 0) throw frameError(`an END frame with ${length} bytes of payload`)
          events.push({ kind: 'end' })
        } else if (length === 0) {
          if (type === FRAME_ABORT) events.push({ kind: 'abort', info: parseAbort(Buffer.alloc(0)) })
        } else {
          this.#type = type
          this.#left = length
        }
        continue
      }
      const n = Math.min(this.#left, chunk.length - pos)
      const piece = chunk.subarray(pos, pos + n)
      pos += n
      this.#left -= n
      if (this.#type === FRAME_DATA) events.push({ kind: 'data', bytes: piece })
      else this.#abortParts.push(piece)
      if (this.#left === 0) {
        if (this.#type === FRAME_ABORT) {
          events.push({ kind: 'abort', info: parseAbort(Buffer.concat(this.#abortParts)) })
          this.#abortParts = []
        }
        this.#type = -1
      }
    }
    return events
  }
}

function frameError(what: string): WarrenError {
  return new WarrenError('ERR_API', `the local API stream is not framed as expected: ${what}`, {
    hint: 'The daemon and this client may be different Warren versions; restart the daemon.',
  })
}

export interface FramedStreamOptions {
  /** The error to fail with when the other side sends ABORT. */
  aborted(info: AbortInfo): Error
  /** The error to fail with when the socket ends, fails or closes before both ENDs went through. */
  lost(cause?: Error): Error
  /** What the ABORT frame says for a local error; default: its `code` when it has one, and its message. */
  describe?(err: Error): AbortInfo
}

function describeDefault(err: Error): AbortInfo {
  const code = (err as { code?: unknown }).code
  return {
    code: typeof code === 'string' && code.startsWith('ERR_') ? code : 'ERR_STREAM_ABORTED',
    message: err.message || err.name,
  }
}

/** How long a socket may take to deliver a final ABORT frame before it is closed anyway. */
const ABORT_LINGER_MS = 5_000

/**
 * The framed stream over an API socket, as a Duplex of the service's bytes: `write()`/`end()` send DATA/END,
 * `'data'`/`'end'` deliver what the other side sent up to its END, and a failure on either side is an `'error'`
 * (from {@link FramedStreamOptions}). `destroy(err)` sends ABORT with the error's reason; `destroy()` before both
 * ENDs also aborts the stream.
 */
export class FramedStream extends Duplex {
  readonly #socket: Socket
  readonly #opts: FramedStreamOptions
  readonly #decoder = new FrameDecoder()
  #endReceived = false
  #endSent = false
  #abortReceived = false

  constructor(socket: Socket, opts: FramedStreamOptions) {
    super({ allowHalfOpen: true, readableHighWaterMark: MAX_FRAME_PAYLOAD, writableHighWaterMark: MAX_FRAME_PAYLOAD })
    this.#socket = socket
    this.#opts = opts
    socket.pause() // read only while our reader takes data (see _read)
    socket.on('data', this.#onData)
    socket.on('end', this.#onSocketEnd)
    socket.on('error', this.#onSocketError)
    socket.on('close', this.#onSocketClose)
    if (socket.destroyed) process.nextTick(() => this.#onSocketClose())
  }

  /** True once END went both ways: the stream ended cleanly. */
  get complete(): boolean {
    return this.#endReceived && this.#endSent
  }

  #onData = (chunk: Buffer): void => {
    let events: FrameEvent[]
    try {
      events = this.#decoder.push(chunk)
    } catch (err) {
      this.destroy(err as Error)
      return
    }
    for (const e of events) {
      if (this.destroyed) return
      if (e.kind === 'abort') {
        this.#abortReceived = true
        this.destroy(this.#opts.aborted(e.info))
        return
      }
      if (this.#endReceived) {
        this.destroy(frameError(`${e.kind === 'end' ? 'a second END' : 'DATA'} after END`))
        return
      }
      if (e.kind === 'end') {
        this.#endReceived = true
        this.push(null)
        this.#socket.resume() // only ABORT or the socket's end may follow: read them whatever our reader does
        this.#maybeEndSocket()
      } else if (!this.push(e.bytes)) this.#socket.pause()
    }
  }

  #onSocketEnd = (): void => {
    if (!this.complete && !this.destroyed) this.destroy(this.#opts.lost())
  }

  #onSocketError = (err: Error): void => {
    if (!this.destroyed) this.destroy(this.#opts.lost(err))
  }

  #onSocketClose = (): void => {
    if (!this.complete && !this.destroyed) this.destroy(this.#opts.lost())
  }

  #maybeEndSocket(): void {
    if (this.complete) this.#socket.end()
  }

  override _read(): void {
    this.#socket.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const s = this.#socket
    if (chunk.length === 0) {
      callback()
      return
    }
    s.cork()
    for (const b of encodeData(chunk)) s.write(b)
    s.uncork()
    if (s.writableNeedDrain) s.once('drain', () => callback())
    else callback()
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.write(encodeEnd())
    this.#endSent = true
    this.#maybeEndSocket()
    callback()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const s = this.#socket
    s.off('data', this.#onData)
    s.off('end', this.#onSocketEnd)
    s.off('error', this.#onSocketError)
    s.off('close', this.#onSocketClose)
    s.on('error', () => {}) // the other side may be gone already
    if (this.#abortReceived || s.destroyed) s.destroy()
    else if (this.complete && err === null) {
      s.end()
      s.resume() // to the socket's end, so that it closes
    } else if (s.writable) {
      const info =
        err === null
          ? { code: 'ERR_STREAM_ABORTED', message: 'the stream was closed before it ended' }
          : (this.#opts.describe ?? describeDefault)(err)
      s.end(encodeAbort(info))
      const linger = setTimeout(() => s.destroy(), ABORT_LINGER_MS)
      linger.unref()
      s.once('close', () => clearTimeout(linger))
      s.resume() // drain what the other side still sends, so that it sees our FIN and closes
    } else s.destroy()
    callback(err)
  }
}
