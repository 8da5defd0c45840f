/**
 * One client connection on the gateway's fast path (fast-path.ts): requests taken one at a time, each an
 * {@link Exchange} (request.ts) with a service stream from the pool, the request body passed on as it came and
 * the service's response passed back (response.ts); errors are answered with the full path's pages (replies.ts).
 * Anything the fast path does not carry is handed over to the full path at a request boundary.
 */
import type { Socket } from 'node:net'
import { FramingError, KEEP_ALIVE_SEC, keepAsLast, parseRequestHead, type RequestHead } from '../../http/http1.ts'
import { LINGER_MS, type UpstreamFailure } from '../../http/reverse-proxy.ts'
import { describeExchangeEnd } from '../exchange-log.ts'
import { concat, type Exchange, exchangeEnd } from './exchange.ts'
import { badRequestBody, badResponse, errorPage, responseTimeout } from './replies.ts'
import { sendUp, startExchange } from './request.ts'
import { type ResponseSink, responseData, responseEnd } from './response.ts'
import type { FastPathContext } from './types.ts'
import { Upstream, type UpstreamUser } from './upstreams.ts'

const PIPELINE_LIMIT = 64 * 1024

/** A client connection of the fast path, in one of four states: awaiting a head, in an exchange, handed over, closed. */
export class FastConnection implements UpstreamUser {
  readonly #fp: FastPathContext
  readonly #socket: Socket
  #buf: Buffer | undefined
  #ex: Exchange | undefined
  #state: 'head' | 'busy' | 'handed' | 'closed' = 'head'
  #timer: NodeJS.Timeout | undefined
  #timing = false
  /** The client sent its FIN. */
  #clientEnded = false
  /** The last request head the client sent: the next one is most often the same bytes. */
  #lastHead: RequestHead | undefined

  /** The response side's hold on this connection (response.ts). */
  readonly #sink: ResponseSink = {
    write: (data, body) => this.#write(data, body),
    started: () => {
      this.#timing = false
    },
    fail: (ex, kind, message) => this.#fail(ex, kind, message),
    cut: (ex, reason) => this.#cut(ex, reason),
    done: (ex) => this.#maybeDone(ex),
    retry: (ex) => this.#open(ex),
    close: (ex) => {
      this.#end(ex)
      this.#state = 'closed'
      this.#lingerClose()
    },
  }

  constructor(fp: FastPathContext, socket: Socket) {
    this.#fp = fp
    this.#socket = socket
    socket.on('data', this.onData)
    socket.on('drain', this.#onDrain)
    socket.on('close', this.#onClose)
    socket.on('end', this.#onEnd)
    socket.on('timeout', this.#onIdle)
    socket.setTimeout(KEEP_ALIVE_SEC * 1000)
  }

  readonly onData = (chunk: Buffer): void => {
    if (this.#state === 'head') {
      this.#buf = concat(this.#buf, chunk)
      this.#nextHead()
      return
    }
    const ex = this.#ex
    if (this.#state !== 'busy' || ex === undefined) return
    if (ex.upstream === undefined || ex.req.done) {
      // still opening the stream, or a pipelined request: kept until this exchange is over
      this.#buf = concat(this.#buf, chunk)
      if (this.#buf.length > PIPELINE_LIMIT) this.#socket.pause()
      return
    }
    this.#sendBody(ex, chunk)
  }

  /** Passes request body bytes from `chunk` on; keeps what follows the body. */
  #sendBody(ex: Exchange, chunk: Buffer): void {
    let n: number
    try {
      n = ex.req.take(chunk, 0)
    } catch (err) {
      this.#badRequestBody(ex, err as Error)
      return
    }
    if (n > 0) this.#toStream(ex, n === chunk.length ? chunk : chunk.subarray(0, n))
    if (n < chunk.length) {
      this.#buf = concat(this.#buf, chunk.subarray(n))
      if (this.#buf.length > PIPELINE_LIMIT) this.#socket.pause()
    }
    if (ex.req.done) this.#maybeDone(ex)
  }

  /** Sends request bytes on the stream (request.ts); the client is paused while the stream is full. */
  #toStream(ex: Exchange, data: Uint8Array, headBytes = 0): boolean {
    return sendUp(ex, data, headBytes, this.#socket, () => this.#ex === ex && this.#state === 'busy' && !ex.req.done)
  }

  #nextHead(): void {
    const buf = this.#buf
    if (buf === undefined || buf.length === 0) return
    const fp = this.#fp.opts
    const head = parseRequestHead(buf, fp.maxHeaderBytes, this.#lastHead)
    if (head === 'more') return
    if (head !== 'fallback') this.#lastHead = keepAsLast(head) ? head : undefined
    const ex = head === 'fallback' ? undefined : startExchange(fp, head, this.#socket.remoteAddress ?? '127.0.0.1')
    if (ex === undefined) {
      this.#handOver()
      return
    }
    fp.headArrived(this.#socket)
    this.#buf = ex.head.size === buf.length ? undefined : buf.subarray(ex.head.size)
    this.#ex = ex
    this.#state = 'busy'
    this.#startTimer()
    const pooled = this.#fp.pool.take(ex.key)
    if (pooled !== undefined) this.#begin(ex, pooled)
    else this.#open(ex)
  }

  #open(ex: Exchange): void {
    const fp = this.#fp.opts
    fp.backend.openService(ex.node, ex.service, { signal: AbortSignal.timeout(fp.openTimeoutMs) }).then(
      (stream) => {
        const up = new Upstream(stream, ex.key, this.#fp.pool)
        if (this.#ex !== ex || this.#state !== 'busy') {
          this.#fp.pool.put(up) // the client left meanwhile: a fresh stream is still good for the next one
          return
        }
        this.#begin(ex, up)
      },
      (err: unknown) => {
        if (this.#ex !== ex || this.#state !== 'busy') return
        this.#answerError(ex, err, undefined)
      },
    )
  }

  /** Sends the head and whatever body bytes are here on `up`. */
  #begin(ex: Exchange, up: Upstream): void {
    ex.upstream = up
    up.user = this
    // the last exchange may have paused it for a slow client and ended before that client's 'drain'
    if (up.stream.readStatus === 'paused') up.stream.resume()
    let first: Buffer = ex.upHead
    const buf = this.#buf
    if (!ex.req.done && buf !== undefined) {
      let n: number
      try {
        n = ex.req.take(buf, 0)
      } catch (err) {
        this.#toStream(ex, first, first.length)
        this.#badRequestBody(ex, err as Error)
        return
      }
      if (n > 0) first = Buffer.concat([first, buf.subarray(0, n)])
      this.#buf = n === buf.length ? undefined : buf.subarray(n)
    }
    const room = this.#toStream(ex, first, ex.upHead.length)
    if (ex.req.done) return
    if (this.#clientEnded) this.#cut(ex, 'the client closed the connection before the request body ended')
    // body bytes that came while the stream was opening may have paused the client (PIPELINE_LIMIT)
    else if (room && this.#socket.isPaused()) this.#socket.resume()
  }

  onUpstreamData(data: Uint8Array): void {
    const ex = this.#ex
    if (ex !== undefined) responseData(this.#sink, ex, data, this.#fp.opts.maxHeaderBytes)
  }

  /** Writes to the client; `body` bytes of `data` are response body (the rest is the head). */
  #write(data: Uint8Array, body = data.byteLength): void {
    const ex = this.#ex
    if (ex !== undefined) ex.bytesDown += body
    if (!this.#socket.write(data) && ex?.upstream !== undefined) {
      ex.upstream.stream.pause()
      ex.heldBack = true
    }
  }

  readonly #onDrain = (): void => {
    const s = this.#ex?.upstream?.stream
    if (s !== undefined && s.readStatus === 'paused') s.resume()
  }

  onUpstreamEnd(error?: Error): void {
    const ex = this.#ex
    if (ex !== undefined) responseEnd(this.#sink, ex, error)
  }

  #maybeDone(ex: Exchange): void {
    if (!ex.req.done || ex.res?.done !== true || this.#ex !== ex) return
    this.#end(ex)
    const up = ex.upstream
    if (up !== undefined) {
      up.user = undefined
      // held back, the service's idle timer may have run since its head came: count it from then
      if (ex.reusable) this.#fp.pool.put(up, ex.heldBack ? Date.now() - ex.since : 0)
      else up.abort(new Error('not reusable'))
    }
    if (ex.head.close || this.#clientEnded) {
      this.#state = 'closed'
      this.#socket.end()
      return
    }
    this.#awaitHead()
  }

  /** Waits for the next request head on the connection (or takes one that came already). */
  #awaitHead(): void {
    this.#state = 'head'
    this.#fp.opts.awaitingHead?.(this.#socket)
    if (this.#socket.isPaused()) this.#socket.resume()
    this.#nextHead()
  }

  /** The exchange is over: slot, timer. */
  #end(ex: Exchange): void {
    this.#ex = undefined
    this.#timing = false
    ex.release()
  }

  #startTimer(): void {
    this.#timing = true
    if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#onTimer, this.#fp.opts.responseTimeoutMs)
      this.#timer.unref()
    } else this.#timer.refresh()
  }

  readonly #onTimer = (): void => {
    const ex = this.#ex
    if (!this.#timing || ex === undefined || ex.started) return
    this.#answerError(ex, responseTimeout(ex, this.#fp.opts.responseTimeoutMs), undefined)
  }

  #fail(ex: Exchange, kind: UpstreamFailure, message: string): void {
    const { err, status } = badResponse(ex, kind, message, this.#fp.opts.responseTimeoutMs)
    this.#answerError(ex, err, status)
  }

  /** An error page instead of the service's response; the stream is dropped. */
  #answerError(ex: Exchange, err: unknown, status: number | undefined): void {
    if (ex.started) {
      this.#cut(ex, (err as Error).message)
      return
    }
    this.#logEnd(ex, `answered with an error page: ${(err as Error).message}`)
    ex.upstream?.abort(new Error('the exchange failed'))
    ex.upstream = undefined
    this.#end(ex)
    // a request whose body was not read to its end leaves the connection unusable
    const close = !ex.req.done || ex.head.close || this.#clientEnded
    const page = errorPage(ex, err, status, close)
    if (close) {
      this.#state = 'closed'
      this.#socket.end(page)
      return
    }
    this.#socket.write(page)
    this.#awaitHead()
  }

  #badRequestBody(ex: Exchange, err: Error): void {
    if (!(err instanceof FramingError) || ex.started) {
      this.#cut(ex, `the request body was malformed (${err.message})`)
      return
    }
    this.#answerError(ex, badRequestBody(err), 400)
  }

  /** The exchange cannot be finished: logged, then the client's connection is cut and the stream reset. */
  #cut(ex: Exchange, reason: string): void {
    this.#logEnd(ex, reason)
    this.#destroy(ex)
  }

  #logEnd(ex: Exchange, reason: string): void {
    this.#fp.opts.log?.('warn', describeExchangeEnd(exchangeEnd(ex), reason))
  }

  /** The response cannot be finished: the client's connection is cut, the stream reset. */
  #destroy(ex: Exchange | undefined): void {
    if (ex !== undefined) {
      ex.upstream?.abort(new Error('the exchange was cut'))
      ex.upstream = undefined
      if (this.#ex === ex) this.#end(ex)
    }
    this.#state = 'closed'
    this.#socket.destroy()
  }

  destroy(): void {
    this.#destroy(this.#ex)
  }

  readonly #onClose = (): void => {
    const ex = this.#ex
    this.#state = 'closed'
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (ex !== undefined) {
      this.#logEnd(ex, 'the client closed the connection before the response ended')
      ex.upstream?.abort(new Error('the client closed the connection'))
      ex.upstream = undefined
      this.#end(ex)
    }
  }

  /** The client's FIN: the connection ends after the current response; a request body cut by it resets the stream. */
  readonly #onEnd = (): void => {
    this.#clientEnded = true
    const ex = this.#ex
    if (this.#state === 'head') {
      this.#state = 'closed'
      this.#socket.end()
      return
    }
    // the request is whole and no response has begun: as in Node's HTTP server (the full path) and nginx, the
    // client's FIN now means it has gone (a closed connection cannot be told from a half-closed one without
    // writing to it), and the exchange is abandoned rather than holding its stream and the service's connection
    // until the response time-out
    if (this.#state === 'busy' && ex !== undefined && ex.req.done && !ex.started) {
      this.#logEnd(ex, 'the client closed the connection before the response began')
      ex.upstream?.abort(new Error('the client closed the connection'))
      ex.upstream = undefined
      this.#end(ex)
      this.#state = 'closed'
      this.#socket.end()
      return
    }
    // still opening the stream: #begin decides once the buffered body bytes are taken
    if (this.#state === 'busy' && ex !== undefined && ex.upstream !== undefined && !ex.req.done) {
      this.#cut(ex, 'the client closed the connection before the request body ended')
    }
  }

  /**
   * Ends the connection after a response that came before the request body was through: the rest of the body is
   * read and dropped (a client held up writing it would not read the response's end), for at most
   * {@link LINGER_MS}, then the connection is cut.
   */
  #lingerClose(): void {
    this.#socket.end()
    this.#socket.resume()
    setTimeout(() => this.#socket.destroy(), LINGER_MS).unref()
  }

  readonly #onIdle = (): void => {
    if (this.#state === 'head') this.#socket.destroy()
  }

  #handOver(): void {
    this.#state = 'handed'
    const s = this.#socket
    s.off('data', this.onData)
    s.off('drain', this.#onDrain)
    s.off('close', this.#onClose)
    s.off('end', this.#onEnd)
    s.off('timeout', this.#onIdle)
    s.setTimeout(0)
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    s.pause()
    const buf = this.#buf
    this.#buf = undefined
    this.#fp.opts.handOver(s, buf)
  }
}
