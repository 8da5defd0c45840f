/**
 * One request in flight on a fast-path client connection (connection.ts), and the small helpers around it: the
 * Date header, buffer joining, and the client-side response head and body framing.
 */

import type { RawHeaders } from '../../http/forward-headers.ts'
import { type BodyFramer, type Framing, KEEP_ALIVE_SEC, type RequestHead } from '../../http/http1.ts'
import type { ExchangeEnd } from '../exchange-log.ts'
import { type ClientHeadSpec, clientResponseHead } from './heads.ts'
import type { Upstream } from './upstreams.ts'

let dateCache = ''
let dateUntil = 0
export function httpDate(): string {
  const now = Date.now()
  if (now >= dateUntil) {
    dateCache = new Date(now).toUTCString()
    dateUntil = now - (now % 1000) + 1000
  }
  return dateCache
}

export function concat(a: Buffer | undefined, b: Uint8Array): Buffer {
  const bb = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  return a === undefined || a.length === 0 ? bb : Buffer.concat([a, bb])
}

/** One request in flight on a client connection. */
export interface Exchange {
  head: RequestHead
  describe: string
  release: () => void
  /** The upstream request head (for a retry). */
  upHead: Buffer
  key: string
  node: string
  service: string
  prefix: string | undefined
  req: BodyFramer
  res: BodyFramer | undefined
  /** Response head bytes so far (until its blank line). */
  resBuf: Buffer | undefined
  /** The response head went to the client. */
  started: boolean
  /** The service's body is close-delimited: passed on chunked. */
  wrapChunks: boolean
  /** The stream may carry another exchange afterwards. */
  reusable: boolean
  retried: boolean
  bodyless: boolean
  upstream: Upstream | undefined
  /** Request body bytes sent on the stream, response body bytes sent to the client (for the log). */
  bytesUp: number
  bytesDown: number
  /** When the request head arrived, ms since the epoch. */
  since: number
  /**
   * The response was held back by a slow client (its stream paused): the service may have written its last byte
   * long before the client read it, and its idle timer started then.
   */
  heldBack: boolean
}

/** A close-delimited body goes to the client chunked: one chunk per piece. */
export function wrapBody(ex: Exchange, body: Uint8Array): Uint8Array {
  if (!ex.wrapChunks || body.length === 0) return body
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')])
}

/** The last client head built for a service's response head, and what it was built with (Keep-Alive is fixed). */
interface Built extends Omit<ClientHeadSpec, 'keepAliveSec'> {
  bytes: Buffer
}

/** Response heads are shared between responses with the same text (http/head-memo.ts); their client heads too. */
const built = new WeakMap<Readonly<RawHeaders>, Built>()

/** The client's response head for the service's, as bytes; never written to by its users. */
export function responseHead(
  ex: Exchange,
  status: number,
  reason: string,
  raw: Readonly<RawHeaders>,
  framing: Readonly<Framing>,
): Buffer {
  const prefix = ex.prefix
  const date = httpDate()
  const chunk = ex.wrapChunks && framing.kind === 'close'
  const close = ex.head.close
  const b = built.get(raw)
  if (
    b !== undefined &&
    b.status === status &&
    b.reason === reason &&
    b.prefix === prefix &&
    b.date === date &&
    b.chunk === chunk &&
    b.close === close
  )
    return b.bytes
  const text = clientResponseHead(raw, { status, reason, prefix, date, chunk, close, keepAliveSec: KEEP_ALIVE_SEC })
  const bytes = Buffer.from(text, 'latin1')
  built.set(raw, { status, reason, prefix, date, chunk, close, bytes })
  return bytes
}

/** What the log says about an exchange that ended abnormally. */
export function exchangeEnd(ex: Exchange): ExchangeEnd {
  return {
    method: ex.head.method,
    path: ex.head.target,
    describe: ex.describe,
    bytesUp: ex.bytesUp,
    bytesDown: ex.bytesDown,
    durationMs: Date.now() - ex.since,
  }
}
