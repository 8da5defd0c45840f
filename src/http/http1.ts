/**
 * A small, strict HTTP/1.1 head parser and body framer for the gateway's fast path (fast-path.ts).
 *
 * Why hand-rolled rather than Node's llhttp (`node:_http_common` HTTPParser): that binding is an undocumented
 * internal whose callbacks and constructor changed between Node versions, and it hands bodies over as slices
 * through a callback per piece, while the fast path wants to pass body bytes on untouched and only know where a
 * message ends. What this parser accepts is deliberately narrow — HTTP/1.1 requests with one Host, at most one
 * Content-Length or `Transfer-Encoding: chunked`, token header names and visible-character values, CRLF line
 * ends — and everything else is answered `'fallback'`, so Node's own server (llhttp) still judges every unusual
 * or malformed request and produces the access port's exact error pages. Bodies are framed
 * ({@link BodyFramer}: Content-Length or chunked) only to find where one message ends and the next begins.
 */
import type { RawHeaders } from './forward-headers.ts'
import { HeadMemo } from './head-memo.ts'

const CRLFCRLF = Buffer.from('\r\n\r\n')
/**
 * A whole request head (without its blank line) in one match: request line, then header lines with token names
 * and values of HTAB, visible ASCII, space and obs-text (no control characters, no bare CR or LF).
 */
const REQUEST_HEAD =
  /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/1\.1(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)*$/
/** A whole response head: status line, header lines with token names and values without NUL, CR or LF. */
const RESPONSE_HEAD = /^HTTP\/1\.([01]) (\d{3})(?: ([^\0\r\n]*))?(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\0\r\n]*)*$/
const DIGITS = /^\d{1,15}$/

/** How a message's body is delimited. */
export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' }

/** A parsed request head; shared between requests with the same head text (head-memo.ts), so frozen. */
export interface RequestHead {
  readonly method: string
  readonly target: string
  /** `[name, value, …]`, values trimmed, as Node's `rawHeaders`. */
  readonly raw: Readonly<RawHeaders>
  readonly host: string
  readonly framing: Readonly<Framing>
  /** The client sent `Connection: close`. */
  readonly close: boolean
  /** Bytes of the head, blank line included. */
  readonly size: number
  /** The head's bytes, blank line included (a buffer of its own, never written to). */
  readonly bytes: Buffer
}

/**
 * `buf` starts with exactly the bytes of `last`, a head parsed before: then it parses to `last` again (a head ends
 * at its first blank line, and `last`'s bytes hold no other). One comparison of bytes, where a memo lookup first
 * turns them into a string and hashes it: a keep-alive client sends the same head again and again, and a service
 * answers it with the same head until its Date moves on.
 */
function startsWithHead(buf: Buffer, last: { readonly bytes: Buffer } | undefined, maxBytes: number): boolean {
  if (last === undefined) return false
  const n = last.bytes.length
  return n <= maxBytes && buf.length >= n && buf.compare(last.bytes, 0, n, 0, n) === 0
}

/** A copy of the head's bytes in a buffer of their own size (not a slice of Node's shared pool). */
function headBytes(buf: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size)
  buf.copy(out, 0, 0, size)
  return out
}

/** Heads parsed before, by their text: up to 64 of up to 2 KiB each, for requests and for responses. */
const MEMO_ENTRIES = 64
const MEMO_KEY_CHARS = 2048

/**
 * Whether a connection or a stream should keep `head` to pass it as `last` next time: heads up to the memo's size,
 * so that an idle keep-alive connection holds no more than that of its last request.
 */
export function keepAsLast(head: { readonly size: number }): boolean {
  return head.size <= MEMO_KEY_CHARS + 4
}
const requestHeads = new HeadMemo<RequestHead>(MEMO_ENTRIES, MEMO_KEY_CHARS)
const responseHeads = new HeadMemo<ResponseHead>(MEMO_ENTRIES, MEMO_KEY_CHARS)

/** Splits a head's header lines (already validated as a whole) into `[name, value, …]`, values trimmed. */
function headerLines(lines: string[]): RawHeaders {
  const raw: RawHeaders = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    let a = colon + 1
    let b = line.length
    while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++
    while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--
    raw.push(line.slice(0, colon), line.slice(a, b))
  }
  return raw
}

/**
 * The request head at the start of `buf`: `'more'` when it is not complete yet, `'fallback'` when it is over
 * `maxBytes` or anything the fast path does not carry itself (Upgrade, Expect, HTTP/1.0, odd framing, …).
 * `last`: the head this connection sent before, returned again when `buf` starts with the same bytes.
 */
export function parseRequestHead(buf: Buffer, maxBytes: number, last?: RequestHead): RequestHead | 'more' | 'fallback' {
  if (startsWithHead(buf, last, maxBytes)) return last!
  const end = buf.indexOf(CRLFCRLF)
  if (end < 0) return buf.length > maxBytes ? 'fallback' : 'more'
  if (end + 4 > maxBytes) return 'fallback'
  const text = buf.toString('latin1', 0, end)
  const seen = requestHeads.get(text)
  if (seen !== undefined) return seen
  const m = REQUEST_HEAD.exec(text)
  if (m === null) return 'fallback'
  const raw = headerLines(text.split('\r\n'))
  let host: string | undefined
  let length: string | undefined
  let chunked = false
  let close = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    // only a few names matter; compare lengths first, most headers are none of them
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          if (host !== undefined) return 'fallback'
          host = raw[i + 1]!
        }
        break
      case 6:
        if (name.toLowerCase() === 'expect') return 'fallback'
        break
      case 7:
        if (name.toLowerCase() === 'upgrade') return 'fallback'
        break
      case 10:
        if (name.toLowerCase() === 'connection') {
          for (const token of raw[i + 1]!.toLowerCase().split(',')) {
            const t = token.trim()
            if (t === 'close') close = true
            else if (t === 'upgrade') return 'fallback'
          }
        }
        break
      case 14:
        if (name.toLowerCase() === 'content-length') {
          if (length !== undefined || !DIGITS.test(raw[i + 1]!)) return 'fallback'
          length = raw[i + 1]!
        }
        break
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          if (chunked || raw[i + 1]!.toLowerCase() !== 'chunked') return 'fallback'
          chunked = true
        }
        break
    }
  }
  if (host === undefined || (chunked && length !== undefined)) return 'fallback'
  const framing: Framing = chunked
    ? { kind: 'chunked' }
    : length !== undefined && Number(length) > 0
      ? { kind: 'length', length: Number(length) }
      : { kind: 'none' }
  return requestHeads.put(
    text,
    Object.freeze({
      method: m[1]!,
      target: m[2]!,
      raw: Object.freeze(raw),
      host,
      framing: Object.freeze(framing),
      close,
      size: end + 4,
      bytes: headBytes(buf, end + 4),
    }),
  )
}

/** A parsed response head; shared between responses with the same head text (head-memo.ts), so frozen. */
export interface ResponseHead {
  readonly status: number
  readonly reason: string
  readonly raw: Readonly<RawHeaders>
  /** Framing of the body as sent by the service (before the request method is taken into account). */
  readonly framing: Readonly<Framing>
  /** The service will close the connection after this response (HTTP/1.0, `Connection: close`). */
  readonly close: boolean
  /** How long the service keeps the connection open while idle, from its `Keep-Alive: timeout=` hint, s. */
  readonly keepAliveSec: number | undefined
  readonly size: number
  /** The head's bytes, blank line included (a buffer of its own, never written to). */
  readonly bytes: Buffer
}

export type ResponseHeadResult = ResponseHead | 'more' | { error: 'head-too-large' | 'not-http'; message: string }

/**
 * The response head at the start of `buf` (a status line, headers, a blank line). `last`: the head the same
 * service stream sent before, returned again when `buf` starts with the same bytes.
 */
export function parseResponseHead(buf: Buffer, maxBytes: number, last?: ResponseHead): ResponseHeadResult {
  if (startsWithHead(buf, last, maxBytes)) return last!
  const end = buf.indexOf(CRLFCRLF)
  if (end < 0) {
    if (buf.length > maxBytes) return { error: 'head-too-large', message: 'response head too large' }
    // a service that does not speak HTTP at all is told apart early, without waiting for a blank line
    if (buf.length >= 5 && buf.toString('latin1', 0, 5) !== 'HTTP/') return notHttp('Expected HTTP/')
    return 'more'
  }
  if (end + 4 > maxBytes) return { error: 'head-too-large', message: 'response head too large' }
  const text = buf.toString('latin1', 0, end)
  const seen = responseHeads.get(text)
  if (seen !== undefined) return seen
  const m = RESPONSE_HEAD.exec(text)
  if (m === null) {
    const first = text.slice(0, text.indexOf('\r\n') >>> 0)
    return notHttp(
      /^HTTP\/1\.[01] \d{3}/.test(first)
        ? 'Invalid header line'
        : `Invalid status line ${JSON.stringify(first.slice(0, 40))}`,
    )
  }
  const raw = headerLines(text.split('\r\n'))
  let length: string | undefined
  let te: string | undefined
  let close = m[1] === '0'
  let keepAliveSec: number | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.length
    if (n !== 14 && n !== 17 && n !== 10) continue // most headers are none of the three below
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    if (name === 'content-length') {
      if (!DIGITS.test(value) || (length !== undefined && length !== value)) return notHttp('Invalid Content-Length')
      length = value
    } else if (name === 'transfer-encoding') te = te === undefined ? value : `${te}, ${value}`
    else if (name === 'connection') {
      const v = value.toLowerCase()
      if (v.includes('close') && /(^|,)\s*close\s*(,|$)/.test(v)) close = true
      else if (m[1] === '0' && /(^|,)\s*keep-alive\s*(,|$)/.test(v)) close = false
    } else if (name === 'keep-alive') keepAliveSec = keepAliveTimeoutOf(value) ?? keepAliveSec
  }
  if (te !== undefined && length !== undefined) return notHttp("Content-Length can't be present with Transfer-Encoding")
  let framing: Framing
  if (te !== undefined) framing = /(^|,)\s*chunked\s*$/i.test(te) ? { kind: 'chunked' } : { kind: 'close' }
  else if (length !== undefined)
    framing = Number(length) > 0 ? { kind: 'length', length: Number(length) } : { kind: 'none' }
  else framing = { kind: 'close' }
  return responseHeads.put(
    text,
    Object.freeze({
      status: Number(m[2]),
      reason: m[3] ?? '',
      raw: Object.freeze(raw),
      framing: Object.freeze(framing),
      close,
      keepAliveSec,
      size: end + 4,
      bytes: headBytes(buf, end + 4),
    }),
  )
}

/** `timeout=<seconds>` in a `Keep-Alive` header (RFC 2068 §19.7.1.1, as Node, Apache and others send it). */
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})(?:$|[,;\s])/i

/**
 * A pooled connection is let go this long before its server's `Keep-Alive: timeout=` hint runs out (undici's default,
 * which both gateway paths use), ms.
 */
export const KEEP_ALIVE_HINT_MARGIN_MS = 2_000

/** The seconds of a `Keep-Alive` header value's `timeout=`, if it has one. */
export function keepAliveTimeoutOf(value: string): number | undefined {
  const t = KEEP_ALIVE_TIMEOUT.exec(value)
  return t === null ? undefined : Number(t[1])
}

function notHttp(message: string): { error: 'not-http'; message: string } {
  return { error: 'not-http', message }
}

export class FramingError extends Error {
  override name = 'FramingError'
}

const CR = 13
const LF = 10
/** Chunked-body parser states. */
const C = {
  Size: 0,
  Ext: 1,
  SizeLf: 2,
  Data: 3,
  DataCr: 4,
  DataLf: 5,
  TrailerStart: 6,
  TrailerLine: 7,
  TrailerLf: 8,
  EndLf: 9,
} as const

function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48
  if (b >= 97 && b <= 102) return b - 87
  if (b >= 65 && b <= 70) return b - 55
  return -1
}

/**
 * Finds the end of one message body in the bytes passing by, without copying them: {@link take} says how many
 * bytes of a chunk belong to the body. Content-Length counts down; chunked bodies are followed through their
 * chunk sizes, extensions and trailers; `close` runs until the connection ends.
 */
export class BodyFramer {
  done: boolean
  #left: number
  readonly #chunked: boolean
  #state: number = C.Size
  #digits = 0

  constructor(framing: Framing) {
    this.#chunked = framing.kind === 'chunked'
    this.#left = framing.kind === 'length' ? framing.length : framing.kind === 'close' ? Number.POSITIVE_INFINITY : 0
    this.done = framing.kind === 'none'
  }

  /** Bytes of `buf` from `off` on that belong to the body (all of them while it is not done); throws FramingError. */
  take(buf: Uint8Array, off: number): number {
    if (this.done) return 0
    if (!this.#chunked) {
      const n = Math.min(this.#left, buf.length - off)
      this.#left -= n
      if (this.#left === 0) this.done = true
      return n
    }
    let i = off
    const end = buf.length
    while (i < end && !this.done) {
      if (this.#state === C.Data) {
        const n = Math.min(this.#left, end - i)
        this.#left -= n
        i += n
        if (this.#left === 0) this.#state = C.DataCr
        continue
      }
      const b = buf[i++]!
      switch (this.#state) {
        case C.Size: {
          const h = hexValue(b)
          if (h >= 0) {
            if (++this.#digits > 12) throw new FramingError('chunk size too large')
            this.#left = this.#left * 16 + h
          } else if (this.#digits === 0) throw new FramingError('invalid chunk size')
          else if (b === 59 /* ; */) this.#state = C.Ext
          else if (b === CR) this.#state = C.SizeLf
          else throw new FramingError('invalid chunk size')
          break
        }
        case C.Ext:
          if (b === CR) this.#state = C.SizeLf
          else if (b === LF) throw new FramingError('bare LF in chunk extension')
          break
        case C.SizeLf:
          if (b !== LF) throw new FramingError('expected LF after chunk size')
          this.#digits = 0
          this.#state = this.#left === 0 ? C.TrailerStart : C.Data
          break
        case C.DataCr:
          if (b !== CR) throw new FramingError('expected CRLF after chunk data')
          this.#state = C.DataLf
          break
        case C.DataLf:
          if (b !== LF) throw new FramingError('expected CRLF after chunk data')
          this.#state = C.Size
          break
        case C.TrailerStart:
          if (b === CR) this.#state = C.EndLf
          else if (b === LF) throw new FramingError('bare LF in trailers')
          else this.#state = C.TrailerLine
          break
        case C.TrailerLine:
          if (b === CR) this.#state = C.TrailerLf
          else if (b === LF) throw new FramingError('bare LF in trailers')
          break
        case C.TrailerLf:
          if (b !== LF) throw new FramingError('expected LF in trailers')
          this.#state = C.TrailerStart
          break
        case C.EndLf:
          if (b !== LF) throw new FramingError('expected LF after the last chunk')
          this.done = true
          break
      }
    }
    return i - off
  }
}

/** Keep-alive time-out of client connections on the access port, s (Node's HTTP server on the full path uses it too). */
export const KEEP_ALIVE_SEC = 30
