/**
 * One client connection on the gateway's fast path (fast-path.ts): requests taken one at a time, each an
 * {@link Exchange} with a service stream from the pool, the request and response heads rewritten and their bodies
 * passed on as they came; anything the fast path does not carry is handed over to the full path at a request
 * boundary.
 */
import type { Socket } from 'node:net'
import { WarrenError } from '../../errors.ts'
import { httpErrorResponse } from '../../http/http-errors.ts'
import {
  BodyFramer,
  type Framing,
  FramingError,
  KEEP_ALIVE_SEC,
  parseRequestHead,
  parseResponseHead,
} from '../../http/http1.ts'
import { IDEMPOTENT, type UpstreamFailure, upstreamFailure } from '../../http/reverse-proxy.ts'
import { reasonOf } from '../../p2p/pipe.ts'
import { waitForRoom } from '../../p2p/stream-room.ts'
import { describeExchangeEnd } from '../exchange-log.ts'
import { concat, type Exchange, exchangeEnd, httpDate, responseHead, wrapBody } from './exchange.ts'
import type { FastPath } from './fast-path.ts'
import { upstreamRequestHead } from './heads.ts'
import { Upstream, type UpstreamUser } from './upstreams.ts'

const PIPELINE_LIMIT = 64 * 1024

export class FastConnection implements UpstreamUser {
  readonly #fp: FastPath
  readonly #socket: Socket
  #buf: Buffer | undefined
  #ex: Exchange | undefined
  #state: 'head' | 'busy' | 'handed' | 'closed' = 'head'
  #timer: NodeJS.Timeout | undefined
  #timing = false
  /** The client sent its FIN. */
  #clientEnded = false

  constructor(fp: FastPath, socket: Socket) {
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

  /**
   * Sends `data` on the stream; `headBytes` of it are the request head (not counted as body). When the stream is
   * full the client socket is paused until it has room; returns false then.
   */
  #toStream(ex: Exchange, data: Uint8Array, headBytes = 0): boolean {
    const up = ex.upstream!
    ex.bytesUp += data.byteLength - headBytes
    try {
      if (!up.stream.send(data)) {
        this.#socket.pause()
        waitForRoom(up.stream).then(
          () => {
            if (this.#ex === ex && this.#state === 'busy' && !ex.req.done) this.#socket.resume()
          },
          () => {},
        )
        return false
      }
    } catch {
      // the stream is gone: its end event settles the exchange
    }
    return true
  }

  #nextHead(): void {
    const buf = this.#buf
    if (buf === undefined || buf.length === 0) return
    const fp = this.#fp.opts
    const head = parseRequestHead(buf, fp.maxHeaderBytes)
    if (head === 'more') return
    if (head === 'fallback') {
      this.#handOver()
      return
    }
    const spec = fp.route(head)
    if (spec === undefined) {
      this.#handOver()
      return
    }
    let ids: { id: string; base36: string }
    let release: () => void
    try {
      ids = fp.gateway.resolveNode(spec.node, spec.browser === true ? { learn: false } : undefined)
      release = fp.gateway.acquire(ids.id)
    } catch {
      this.#handOver() // the full path answers with the exact page
      return
    }
    fp.headArrived(this.#socket)
    this.#buf = head.size === buf.length ? undefined : buf.subarray(head.size)
    const upHead = upstreamRequestHead(head.raw, {
      method: head.method,
      path: spec.path,
      clientIp: this.#socket.remoteAddress ?? '127.0.0.1',
      clientHost: head.host,
      host: spec.host ?? `${spec.service}.${ids.base36}.${fp.tld}`,
      prefix: spec.prefix,
      chunked: head.framing.kind === 'chunked',
    })
    const ex: Exchange = {
      head,
      describe: `service "${spec.service}" on node ${ids.id}`,
      release,
      upHead: Buffer.from(upHead, 'latin1'),
      key: `${ids.id}/${spec.service}`,
      node: ids.id,
      service: spec.service,
      prefix: spec.prefix,
      req: new BodyFramer(head.framing),
      res: undefined,
      resBuf: undefined,
      started: false,
      wrapChunks: false,
      reusable: true,
      retried: false,
      bodyless: head.framing.kind === 'none',
      upstream: undefined,
      bytesUp: 0,
      bytesDown: 0,
      since: Date.now(),
    }
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
    if (ex === undefined) return
    if (ex.res === undefined) {
      let buf = concat(ex.resBuf, data)
      for (;;) {
        const head = parseResponseHead(buf, this.#fp.opts.maxHeaderBytes)
        if (head === 'more') {
          ex.resBuf = buf
          return
        }
        if ('error' in head) {
          this.#fail(ex, head.error, head.message)
          return
        }
        if (head.status === 101) {
          this.#fail(ex, 'not-http', 'unexpected 101 Switching Protocols')
          return
        }
        buf = buf.subarray(head.size)
        if (head.status < 200) continue // 100 Continue, 103 Early Hints …: the final response follows
        this.#timing = false
        ex.resBuf = undefined
        const bodyless = ex.head.method === 'HEAD' || head.status === 204 || head.status === 304
        const framing: Framing = bodyless ? { kind: 'none' } : head.framing
        if (framing.kind === 'close') {
          ex.wrapChunks = true
          ex.reusable = false
        }
        if (head.close) ex.reusable = false
        ex.res = new BodyFramer(framing)
        const text = responseHead(ex, head.status, head.reason, head.raw, framing)
        ex.started = true
        const n = this.#takeResponse(ex, buf)
        const body = n === 0 ? undefined : wrapBody(ex, buf.subarray(0, n))
        // head and the first body bytes in one buffer: one write, one syscall
        const len = Buffer.byteLength(text, 'latin1')
        const out = Buffer.allocUnsafe(len + (body?.length ?? 0))
        out.write(text, 0, 'latin1')
        if (body !== undefined) out.set(body, len)
        this.#write(out, body?.length ?? 0)
        break
      }
    } else {
      const n = this.#takeResponse(ex, data)
      if (n > 0) this.#write(wrapBody(ex, n === data.length ? data : data.subarray(0, n)))
    }
    if (ex.res?.done === true) this.#maybeDone(ex)
  }

  #takeResponse(ex: Exchange, data: Uint8Array): number {
    let n: number
    try {
      n = ex.res!.take(data, 0)
    } catch (err) {
      // the head is out: all the client can learn is that the response was cut
      this.#cut(ex, `the service sent a malformed response body (${(err as Error).message})`)
      return 0
    }
    if (n < data.length) ex.reusable = false // bytes past the response: the stream cannot be trusted
    return n
  }

  /** Writes to the client; `body` bytes of `data` are response body (the rest is the head). */
  #write(data: Uint8Array, body = data.byteLength): void {
    const ex = this.#ex
    if (ex !== undefined) ex.bytesDown += body
    if (!this.#socket.write(data)) ex?.upstream?.stream.pause()
  }

  readonly #onDrain = (): void => {
    const s = this.#ex?.upstream?.stream
    if (s !== undefined && s.readStatus === 'paused') s.resume()
  }

  onUpstreamEnd(error?: Error): void {
    const ex = this.#ex
    if (ex === undefined) return
    ex.reusable = false
    ex.upstream = undefined
    if (ex.res === undefined) {
      // nothing (or no whole head) came back; a pooled stream the service had closed is tried once more
      if (ex.resBuf === undefined && !ex.retried && ex.bodyless && IDEMPOTENT.has(ex.head.method)) {
        ex.retried = true
        this.#open(ex)
        return
      }
      this.#fail(ex, 'incomplete', error?.message ?? 'other side closed')
      return
    }
    // a close-delimited body ends with the stream's FIN; any error means it was cut
    if (ex.wrapChunks && error === undefined) {
      this.#write(Buffer.from('0\r\n\r\n'))
      ex.res.done = true
      this.#maybeDone(ex)
      return
    }
    if (!ex.res.done) {
      this.#cut(
        ex,
        error === undefined ? 'the service closed the stream before the response body ended' : reasonOf(error),
      )
      return
    }
    if (!ex.req.done) {
      // answered before the request body was through, then closed: the rest of the body has nowhere to go
      this.#end(ex)
      this.#state = 'closed'
      this.#socket.end()
    }
  }

  #maybeDone(ex: Exchange): void {
    if (!ex.req.done || ex.res?.done !== true || this.#ex !== ex) return
    this.#end(ex)
    const up = ex.upstream
    if (up !== undefined) {
      up.user = undefined
      if (ex.reusable) this.#fp.pool.put(up)
      else up.abort(new Error('not reusable'))
    }
    if (ex.head.close || this.#clientEnded) {
      this.#state = 'closed'
      this.#socket.end()
      return
    }
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
    const ms = this.#fp.opts.responseTimeoutMs
    const err = new WarrenError('ERR_TIMEOUT', `${ex.describe} sent no response within ${ms} ms`, {
      hint: 'The service is slow or stuck; raise gateway.responseTimeoutMs for slow services.',
    })
    this.#answerError(ex, err, undefined)
  }

  #fail(ex: Exchange, kind: UpstreamFailure, message: string): void {
    const up = { describe: ex.describe, responseTimeoutMs: this.#fp.opts.responseTimeoutMs }
    this.#answerError(ex, upstreamFailure(kind, new Error(message), up), kind === 'head-too-large' ? 502 : undefined)
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
    const page = httpErrorResponse(err, {
      ...(status === undefined ? {} : { status }),
      close,
      date: httpDate(),
      keepAliveTimeoutSec: KEEP_ALIVE_SEC,
      head: ex.head.method === 'HEAD',
    })
    if (close) {
      this.#state = 'closed'
      this.#socket.end(page)
      return
    }
    this.#socket.write(page)
    this.#state = 'head'
    this.#fp.opts.awaitingHead?.(this.#socket)
    if (this.#socket.isPaused()) this.#socket.resume()
    this.#nextHead()
  }

  #badRequestBody(ex: Exchange, err: Error): void {
    const e = new WarrenError('ERR_BAD_NAME', `the access port could not parse the request (${err.message})`, {
      hint: 'Speak HTTP/1.1 or SOCKS5 to the access port.',
    })
    if (!(err instanceof FramingError) || ex.started) {
      this.#cut(ex, `the request body was malformed (${err.message})`)
      return
    }
    this.#answerError(ex, e, 400)
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
    // still opening the stream: #begin decides once the buffered body bytes are taken
    if (this.#state === 'busy' && ex !== undefined && ex.upstream !== undefined && !ex.req.done) {
      this.#cut(ex, 'the client closed the connection before the request body ended')
    }
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
