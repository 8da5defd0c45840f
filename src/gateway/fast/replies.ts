/**
 * The fast path's error replies (connection.ts): the errors for a service that sent no response in time or a bad
 * one, and for a request body the access port could not parse, and the error page that answers the client in
 * place of the service's response — the same page the full path sends.
 */
import { WarrenError } from '../../errors.ts'
import { httpErrorResponse } from '../../http/http-errors.ts'
import { KEEP_ALIVE_SEC } from '../../http/http1.ts'
import { type UpstreamFailure, upstreamFailure } from '../../http/reverse-proxy.ts'
import { type Exchange, httpDate } from './exchange.ts'

/** The service sent no response head within `ms`. */
export function responseTimeout(ex: Exchange, ms: number): WarrenError {
  return new WarrenError('ERR_TIMEOUT', `${ex.describe} sent no response within ${ms} ms`, {
    hint: 'The service is slow or stuck; raise gateway.responseTimeoutMs for slow services.',
  })
}

/** The service's response head was over the limit, not HTTP, or cut: the error and its status. */
export function badResponse(
  ex: Exchange,
  kind: UpstreamFailure,
  message: string,
  responseTimeoutMs: number,
): { err: WarrenError; status: number | undefined } {
  const up = { describe: ex.describe, responseTimeoutMs }
  return { err: upstreamFailure(kind, new Error(message), up), status: kind === 'head-too-large' ? 502 : undefined }
}

/** The client's request body was malformed (answered with 400). */
export function badRequestBody(err: Error): WarrenError {
  return new WarrenError('ERR_BAD_REQUEST', `the access port could not parse the request (${err.message})`, {
    hint: 'Speak HTTP/1.1 or SOCKS5 to the access port.',
  })
}

/** The error page for `err` in answer to `ex`; `close` ends the client connection after it. */
export function errorPage(ex: Exchange, err: unknown, status: number | undefined, close: boolean): string {
  return httpErrorResponse(err, {
    ...(status === undefined ? {} : { status }),
    close,
    date: httpDate(),
    keepAliveTimeoutSec: KEEP_ALIVE_SEC,
    head: ex.head.method === 'HEAD',
  })
}
