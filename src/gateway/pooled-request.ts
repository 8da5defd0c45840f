/**
 * Carries one HTTP request from the access port to a service over a pooled service stream (see
 * {@link ServicePools}) and its response back, streaming both bodies with back-pressure, with a time limit on the
 * service's response head. The gateway's and the HTTP proxy's path; Upgrade requests go through
 * `proxyUpgrade` (reverse-proxy.ts) on a fresh stream instead.
 *
 * Built on undici's dispatcher interface (callbacks, no per-request stream objects). undici refuses to send
 * `Transfer-Encoding` and `Expect` itself: a request body of unknown length goes out chunked anyway, and the
 * access port has already answered the client's `Expect: 100-continue`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { isWarrenError, WarrenError } from '../errors.ts'
import { type RawHeaders, responseHeaders, withoutHeaders } from '../http/forward-headers.ts'
import { sendHttpError } from '../http/http-errors.ts'
import {
  detachedBody,
  dropRestOfBody,
  hasNoBody,
  IDEMPOTENT,
  type Upstream,
  upstreamFailure,
} from '../http/reverse-proxy.ts'
import type { Logger } from '../log.ts'
import { reasonOf } from '../p2p/pipe.ts'
import { describeExchangeEnd } from './exchange-log.ts'

/** An {@link Upstream} reached through an undici pool of service streams instead of an http.Agent. */
export interface PooledUpstream extends Omit<Upstream, 'agent' | 'maxHeaderBytes'> {
  pool: Dispatcher
  /** Exchanges that end abnormally (error page, cut response, client gone) are logged here at `warn`. */
  log?: Logger
}

const UNSENDABLE = new Set(['transfer-encoding', 'expect'])

/** Turns an undici failure into the WarrenError the client sees. */
function poolError(err: unknown, up: PooledUpstream): WarrenError {
  if (isWarrenError(err)) return err
  const e = err as { code?: string; name?: string }
  if (e.code === 'UND_ERR_HEADERS_OVERFLOW') return upstreamFailure('head-too-large', err, up)
  if (e.name === 'HTTPParserError') return upstreamFailure('not-http', err, up)
  return upstreamFailure('incomplete', err, up)
}

function latin1(raw: Buffer[] | string[] | null): RawHeaders {
  const out: RawHeaders = []
  if (raw === null) return out
  for (const h of raw) out.push(typeof h === 'string' ? h : h.toString('latin1'))
  return out
}

/** Forwards `req` and answers `res`; resolves when the exchange is over (either way). */
export function forwardOverPool(req: IncomingMessage, res: ServerResponse, up: PooledUpstream): Promise<void> {
  const method = req.method ?? 'GET'
  const bodyless = hasNoBody(req)
  if (bodyless) req.resume()
  const headers = withoutHeaders(up.headers, UNSENDABLE)
  const since = Date.now()
  let bytesUp = 0
  let bytesDown = 0
  const logEnd = (reason: string): void => {
    const e = {
      method,
      path: req.url ?? up.path,
      describe: up.describe,
      bytesUp,
      bytesDown,
      durationMs: Date.now() - since,
    }
    up.log?.('warn', describeExchangeEnd(e, reason))
  }
  return new Promise<void>((resolve) => {
    let over = false
    const finish = (): void => {
      if (!over) {
        over = true
        resolve()
      }
    }
    const attempt = (retry: boolean): void => {
      /** This attempt no longer owns `res` (answered, failed, retried, or the client left). */
      let settled = false
      let abort: ((err: Error) => void) | undefined
      let abortWith: Error | undefined
      const stop = (err: Error): void => {
        if (abort !== undefined) abort(err)
        else abortWith = err // still waiting for a stream: undici hands out the abort function once it has one
      }
      const fail = (err: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        res.off('close', onClientGone)
        const e = poolError(err, up)
        logEnd(`answered with an error page: ${e.message}`)
        // an oversized head from the service is the service's fault: 502, not the client's 431
        sendHttpError(res, e, { close: !req.complete, ...(e.code === 'ERR_HEADERS_TOO_LARGE' ? { status: 502 } : {}) })
        finish()
      }
      const timer = setTimeout(() => {
        const err = new WarrenError(
          'ERR_TIMEOUT',
          `${up.describe} sent no response within ${up.responseTimeoutMs} ms`,
          {
            hint: 'The service is slow or stuck; raise gateway.responseTimeoutMs for slow services.',
          },
        )
        fail(err)
        stop(err)
      }, up.responseTimeoutMs)
      const onClientGone = (): void => {
        if (res.writableFinished) return
        logEnd('the client closed the connection before the response ended')
        settled = true
        clearTimeout(timer)
        stop(new Error('the client closed the connection'))
        finish()
      }
      res.once('close', onClientGone)
      let resume: (() => void) | undefined
      let status = 0
      const onDrain = (): void => resume?.()
      const onComplete = (): void => {
        if (settled) return
        settled = true
        res.off('drain', onDrain)
        res.off('close', onClientGone)
        res.once('close', finish)
        // answered before the request body was through: the rest has nowhere to go
        if (!bodyless) dropRestOfBody(req)
        res.end()
      }
      const handler: Dispatcher.DispatchHandler = {
        onConnect(abortRequest) {
          abort = abortRequest
          if (abortWith !== undefined) abortRequest(abortWith)
        },
        onHeaders(statusCode, rawHeaders, resumeRequest, statusText) {
          if (settled) return false
          if (statusCode < 200) return true // 1xx (103 Early Hints …): the final response follows
          clearTimeout(timer)
          resume = resumeRequest
          status = statusCode
          let head = responseHeaders(latin1(rawHeaders))
          if (up.rewriteResponse !== undefined) head = up.rewriteResponse(head)
          try {
            res.writeHead(statusCode, statusText, head)
          } catch (err) {
            settled = true
            res.off('close', onClientGone)
            sendHttpError(res, poolError(err, up), { close: true })
            stop(err as Error)
            finish()
            return false
          }
          res.on('drain', onDrain)
          return true
        },
        onData(chunk) {
          if (settled) return false
          bytesDown += chunk.length
          return res.write(chunk)
        },
        onBodySent(chunk: unknown) {
          bytesUp += typeof chunk === 'number' ? chunk : (chunk as Uint8Array).byteLength
        },
        onComplete,
        onError(err) {
          if (settled) {
            // the head is out: all the client can learn is that the response was cut
            if (res.headersSent && !res.writableFinished) res.destroy()
            return
          }
          if (res.headersSent && (status === 204 || status === 304) && isLengthMismatch(err)) {
            // undici takes the Content-Length of a 304 (the representation's, RFC 9110 §8.6) for a body it
            // expected and drops the socket: the answer itself was whole
            onComplete()
            return
          }
          if (res.headersSent) {
            // cut mid-body: the client must not take it for a whole response
            logEnd(reasonOf(err))
            settled = true
            clearTimeout(timer)
            res.off('close', onClientGone)
            res.destroy()
            finish()
            return
          }
          // a pooled stream the service had already closed: try once more on a fresh one
          if (retry && bodyless && IDEMPOTENT.has(method) && !isWarrenError(err) && isSocketError(err)) {
            settled = true
            clearTimeout(timer)
            res.off('close', onClientGone)
            attempt(false)
            return
          }
          fail(err)
        },
      }
      up.pool.dispatch(
        { method: method as Dispatcher.HttpMethod, path: up.path, headers, body: bodyless ? null : detachedBody(req) },
        handler,
      )
    }
    attempt(true)
  })
}

function isLengthMismatch(err: unknown): boolean {
  return (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
}

/** The connection or service stream went away (closed, or reset by the serving node, as on unexpose). */
function isSocketError(err: unknown): boolean {
  const code = (err as { code?: string }).code
  return (
    code === 'UND_ERR_SOCKET' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    (err as { name?: string }).name === 'StreamResetError'
  )
}
