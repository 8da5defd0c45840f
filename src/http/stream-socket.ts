/**
 * A Node `Duplex` over a libp2p `Stream`, shaped enough like a `net.Socket` for Node's HTTP client and server
 * to run HTTP/1.1 over a service stream (`http.request({ createConnection })`, `server.emit('connection', s)`).
 *
 * - Back-pressure both ways: a full readable buffer pauses the stream (Yamux stops granting window); a full
 *   stream makes `_write` wait for its drain.
 * - Half-close: `end()` closes only our write side (`stream.close()`); the remote's FIN ends the readable side
 *   once the reader has read every byte before it.
 * - `destroy()` without an error after both sides finished is quiet; otherwise the stream is reset, unless the
 *   error is one the owner calls a normal close (`closesCleanly`: a pool letting an idle connection go), which ends
 *   the stream with a FIN like `end()` would.
 * - `setTimeout` works like a socket's idle timer, so Node's keep-alive handling can time out idle sockets.
 */
import { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { STREAM_READ_BUFFER } from '../p2p/pipe.ts'
import { endedAlready } from '../p2p/stream-ended.ts'
import { waitForRoom } from '../p2p/stream-room.ts'

/** How long a stream may stay half-open after this side finished and was destroyed, ms. */
const LINGER_MS = 10_000

export class StreamSocket extends Duplex {
  readonly stream: Stream
  /** What `req.socket.remoteAddress` shows to an HTTP server; the caller's node id on the host side. */
  remoteAddress: string | undefined
  remotePort: number | undefined
  readonly remoteFamily = 'libp2p'
  readonly localAddress = '127.0.0.1'
  readonly localPort = 0
  connecting = false
  #timeoutMs = 0
  #timer: NodeJS.Timeout | undefined
  #ended = false
  /** The far side's FIN came; the readable side ends once its bytes have been read. */
  #eof = false
  /** The stream was paused because the reader fell behind, since the owner last cleared this. */
  heldBack = false
  /** Exchanges the owner has started on this socket (an HTTP client's requests). */
  exchanges = 0
  readonly #closesCleanly: ((err: Error) => boolean) | undefined

  constructor(stream: Stream, opts: { remoteAddress?: string; closesCleanly?: (err: Error) => boolean } = {}) {
    super({ allowHalfOpen: true })
    this.stream = stream
    this.remoteAddress = opts.remoteAddress
    this.#closesCleanly = opts.closesCleanly
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, STREAM_READ_BUFFER)
    stream.addEventListener('message', this.#onMessage)
    stream.addEventListener('end', this.#onEnd)
    stream.addEventListener('close', this.#onClose)
    if (stream.readableEnded) queueMicrotask(this.#onEnd)
    // ended before this socket was made around it (reset while the host's answer was read): no 'close' comes again
    const ended = endedAlready(stream)
    if (ended !== undefined) queueMicrotask(() => this.#onClose(Object.assign(new Event('close'), ended)))
  }

  readonly #onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    this.#touch()
    const buf = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    if (!this.push(buf)) {
      this.stream.pause()
      this.heldBack = true
    }
  }

  readonly #onEnd = (): void => {
    // a reset emits 'end' before its 'close' with the error: that is no FIN, and must not read as one
    const s = this.stream.status
    if (this.#ended || this.#eof || s === 'reset' || s === 'aborted') return
    this.#eof = true
    this.#endOnceRead()
  }

  /**
   * The far side's FIN ends the readable side only once the reader has taken every byte before it, and never
   * inside a `read()`: undici 7.30.3 takes the last bytes, pauses its parser for a slow body consumer, and
   * asserts (a throw that ends the process) if the socket's 'end' comes before it reads again (UPSTREAM.md).
   */
  #endOnceRead(): void {
    queueMicrotask(() => {
      if (this.#ended || this.destroyed || this.readableLength > 0) return
      this.#ended = true
      this.push(null)
    })
  }

  readonly #onClose = (evt: Event & { error?: Error }): void => {
    this.#clearTimer()
    if (evt.error !== undefined) this.destroy(evt.error)
    else {
      this.#onEnd()
      if (!this.writableFinished && !this.destroyed) this.destroy()
    }
  }

  override _read(): void {
    if (this.stream.readStatus === 'paused') this.stream.resume()
    if (this.#eof) this.#endOnceRead()
  }

  override read(size?: number): ReturnType<Duplex['read']> {
    const chunk = super.read(size)
    // the read that took the last bytes before the FIN: the end follows, after this read
    if (this.#eof && !this.#ended && this.readableLength === 0) this.#endOnceRead()
    return chunk
  }

  #send(chunk: Uint8Array, cb: (err?: Error | null) => void): void {
    this.#touch()
    try {
      if (this.stream.send(chunk)) cb()
      else waitForRoom(this.stream).then(() => cb(), cb)
    } catch (err) {
      cb(err as Error)
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send(chunk, cb)
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.stream.close().then(
      () => cb(),
      (err: Error) => cb(err),
    )
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#clearTimer()
    this.stream.removeEventListener('message', this.#onMessage)
    this.stream.removeEventListener('end', this.#onEnd)
    this.stream.removeEventListener('close', this.#onClose)
    const s = this.stream.status
    const stream = this.stream
    const letGo = err !== null && this.#closesCleanly?.(err) === true
    const clean = err === null || letGo
    if (s === 'open' || s === 'closing') {
      if (letGo && stream.writeStatus === 'writable' && this.writableLength === 0) {
        // an idle connection let go: close our side with a FIN, so the far side sees a clean close
        stream.close().catch((e: Error) => stream.abort(e))
      }
      const wroteAll = stream.writeStatus === 'closed' || stream.writeStatus === 'closing'
      if (clean && wroteAll) {
        // like a TCP close after our FIN: let the remote read what we sent and close its side; reset it only
        // if it lingers
        if (!this.#ended) {
          setTimeout(() => {
            if (stream.status === 'open' || stream.status === 'closing') stream.abort(new Error('closed by this side'))
          }, LINGER_MS).unref()
        }
      } else stream.abort(err ?? new Error('connection closed by this side'))
    }
    cb(err)
  }

  // --- the parts of net.Socket that Node's HTTP code calls ---

  setTimeout(ms: number, cb?: () => void): this {
    this.#timeoutMs = ms
    if (cb !== undefined) {
      if (ms === 0) this.off('timeout', cb)
      else this.once('timeout', cb)
    }
    this.#touch()
    return this
  }

  #touch(): void {
    this.#clearTimer()
    if (this.#timeoutMs > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), this.#timeoutMs)
      this.#timer.unref()
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  setNoDelay(_noDelay?: boolean): this {
    return this
  }

  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this
  }

  ref(): this {
    return this
  }

  unref(): this {
    return this
  }

  destroySoon(): void {
    if (this.writable) this.end()
    if (this.writableFinished) this.destroy()
    else this.once('finish', () => this.destroy())
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort }
  }
}
