/**
 * Writes a Warren error to an HTTP client: on a `ServerResponse` (gateway, absolute-form proxy requests) or
 * as a raw response on a socket (CONNECT and Upgrade, where Node hands over the bare socket).
 */
import type { ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { toWarrenError, type WarrenError } from '../errors.ts'
import { errorPageText, httpStatusFor } from './error-replies.ts'

export interface HttpErrorOptions {
  /** Overrides the status chosen from the error code (e.g. 401 instead of 407 for the gateway). */
  status?: number
  /** Close the connection after the page (default: keep it open where HTTP allows). */
  close?: boolean
}

function headersFor(err: WarrenError, status: number, body: string): Record<string, string | number> {
  const h: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-warren-error': err.code,
  }
  if (status === 407) h['proxy-authenticate'] = 'Basic realm="warren"'
  if (status === 401) h['www-authenticate'] = 'Basic realm="warren"'
  return h
}

/** Answers with the error page, unless the response has already started (then the connection is cut). */
export function sendHttpError(res: ServerResponse, error: unknown, opts: HttpErrorOptions = {}): void {
  const err = toWarrenError(error)
  if (res.headersSent) {
    res.destroy(err)
    return
  }
  const status = opts.status ?? httpStatusFor(err)
  const body = errorPageText(status, STATUS_CODES[status] ?? 'Error', err)
  const headers = headersFor(err, status, body)
  if (opts.close === true) {
    headers.connection = 'close'
    res.shouldKeepAlive = false
  }
  res.writeHead(status, headers)
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

/** Writes a complete error response on a bare socket and closes it. */
export function writeRawHttpError(socket: Duplex, error: unknown, opts: HttpErrorOptions = {}): void {
  const err = toWarrenError(error)
  const status = opts.status ?? httpStatusFor(err)
  const reason = STATUS_CODES[status] ?? 'Error'
  const body = errorPageText(status, reason, err)
  const headers = { ...headersFor(err, status, body), connection: 'close' }
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\n${head}\r\n${body}`)
}

/**
 * The bytes `sendHttpError` writes for `error` on a `ServerResponse`, for the gateway's fast path, which answers
 * on the bare client socket: same status, headers and page, with `Date` and the connection's keep-alive headers
 * as Node's HTTP server adds them.
 */
export function httpErrorResponse(
  error: unknown,
  opts: HttpErrorOptions & { date: string; keepAliveTimeoutSec: number; head: boolean },
): string {
  const err = toWarrenError(error)
  const status = opts.status ?? httpStatusFor(err)
  const reason = STATUS_CODES[status] ?? 'Error'
  const body = errorPageText(status, reason, err)
  let out = `HTTP/1.1 ${status} ${reason}\r\n`
  for (const [k, v] of Object.entries(headersFor(err, status, body))) out += `${k}: ${v}\r\n`
  out += `Date: ${opts.date}\r\n`
  out +=
    opts.close === true
      ? 'Connection: close\r\n'
      : `Connection: keep-alive\r\nKeep-Alive: timeout=${opts.keepAliveTimeoutSec}\r\n`
  return `${out}\r\n${opts.head ? '' : body}`
}
