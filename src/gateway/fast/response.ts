/**
 * The response side of a fast-path exchange (connection.ts): the service's bytes parsed into a response head
 * (interim 1xx responses skipped), the head rewritten for the client (exchange.ts) and the body passed on as it
 * came, framed only to find its end; a close-delimited body goes to the client chunked. The stream's end decides
 * how the exchange ends: a retry on a fresh stream, an error page, a cut response, or a clean finish.
 */
import { BodyFramer, type Framing, keepAsLast, parseResponseHead } from '../../http/http1.ts'
import { IDEMPOTENT, type UpstreamFailure } from '../../http/reverse-proxy.ts'
import { reasonOf } from '../../p2p/pipe.ts'
import { concat, type Exchange, responseHead, wrapBody } from './exchange.ts'

/** What the response side does to the client connection of an exchange. */
export interface ResponseSink {
  /** Writes to the client; `body` bytes of `data` are response body (default: all of it). */
  write(data: Uint8Array, body?: number): void
  /** The final response head arrived: the response deadline is over. */
  started(): void
  /** The response head was bad or never came: an error page instead. */
  fail(ex: Exchange, kind: UpstreamFailure, message: string): void
  /** The response cannot be finished: the client connection is cut. */
  cut(ex: Exchange, reason: string): void
  /** The response (or the request) reached its end: the exchange is over once both have. */
  done(ex: Exchange): void
  /** Sends the request again on a fresh stream. */
  retry(ex: Exchange): void
  /** The exchange is over while the request body is not: the client connection is ended. */
  close(ex: Exchange): void
}

/** Bytes from the service for `ex`. */
export function responseData(sink: ResponseSink, ex: Exchange, data: Uint8Array, maxHeaderBytes: number): void {
  if (ex.res === undefined) {
    let buf = concat(ex.resBuf, data)
    for (;;) {
      const head = parseResponseHead(buf, maxHeaderBytes, ex.upstream?.lastHead)
      if (head === 'more') {
        ex.resBuf = buf
        return
      }
      if ('error' in head) {
        sink.fail(ex, head.error, head.message)
        return
      }
      if (head.status === 101) {
        sink.fail(ex, 'not-http', 'unexpected 101 Switching Protocols')
        return
      }
      if (head.status < 200) {
        buf = buf.subarray(head.size)
        continue // 100 Continue, 103 Early Hints …: the final response follows
      }
      if (ex.upstream !== undefined) ex.upstream.lastHead = keepAsLast(head) ? head : undefined
      sink.started()
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
      const off = head.size
      const n = takeResponse(sink, ex, buf, off)
      if (n === 0) {
        sink.write(text, 0)
        break
      }
      // head and the first body bytes in one buffer: one write, one syscall
      if (ex.wrapChunks) {
        const body = wrapBody(ex, buf.subarray(off, off + n))
        const out = Buffer.allocUnsafe(text.length + body.length)
        text.copy(out, 0)
        out.set(body, text.length)
        sink.write(out, body.length)
      } else {
        const out = Buffer.allocUnsafe(text.length + n)
        text.copy(out, 0)
        buf.copy(out, text.length, off, off + n)
        sink.write(out, n)
      }
      break
    }
  } else {
    const n = takeResponse(sink, ex, data, 0)
    if (n > 0) sink.write(wrapBody(ex, n === data.length ? data : data.subarray(0, n)))
  }
  if (ex.res?.done === true) sink.done(ex)
}

/** Response body bytes of `data` from `off` on: how many; the stream is not reused when more came. */
function takeResponse(sink: ResponseSink, ex: Exchange, data: Uint8Array, off: number): number {
  let n: number
  try {
    n = ex.res!.take(data, off)
  } catch (err) {
    // the head is out: all the client can learn is that the response was cut
    sink.cut(ex, `the service sent a malformed response body (${(err as Error).message})`)
    return 0
  }
  if (n < data.length - off) ex.reusable = false // bytes past the response: the stream cannot be trusted
  return n
}

/** The service closed its side of the stream for `ex` (FIN), or the stream closed or was reset (`error`). */
export function responseEnd(sink: ResponseSink, ex: Exchange, error: Error | undefined): void {
  ex.reusable = false
  ex.upstream = undefined
  if (ex.res === undefined) {
    // nothing (or no whole head) came back; a pooled stream the service had closed is tried once more
    if (ex.resBuf === undefined && !ex.retried && ex.bodyless && IDEMPOTENT.has(ex.head.method)) {
      ex.retried = true
      sink.retry(ex)
      return
    }
    sink.fail(ex, 'incomplete', error?.message ?? 'other side closed')
    return
  }
  // a close-delimited body ends with the stream's FIN; any error means it was cut
  if (ex.wrapChunks && error === undefined) {
    sink.write(Buffer.from('0\r\n\r\n'))
    ex.res.done = true
    sink.done(ex)
    return
  }
  if (!ex.res.done) {
    sink.cut(ex, error === undefined ? 'the service closed the stream before the response body ended' : reasonOf(error))
    return
  }
  // answered before the request body was through, then closed: the rest of the body has nowhere to go
  if (!ex.req.done) sink.close(ex)
}
