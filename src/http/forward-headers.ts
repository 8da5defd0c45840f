/**
 * Header rewriting for requests carried to a service, on raw header lists (`[name, value, name, value, …]` as in
 * `IncomingMessage.rawHeaders`), so duplicates and the client's spelling survive.
 *
 * - Hop-by-hop headers (RFC 9110 §7.6.1, and any named in `Connection`) are dropped; `Upgrade` requests keep
 *   `Connection: upgrade` and `Upgrade`.
 * - `X-Forwarded-For/-Proto/-Host` and `Forwarded` (RFC 7239) are appended to what the client sent.
 */

export type RawHeaders = string[]

/** Hop-by-hop headers (RFC 9110 §7.6.1 and the usual proxy ones): never forwarded. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Values of `name` (case-insensitive), in order. */
export function headerValues(raw: RawHeaders, name: string): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!)
  return out
}

/** The list without any header whose lower-case name is in `names`. */
export function withoutHeaders(raw: RawHeaders, names: ReadonlySet<string>): RawHeaders {
  const out: RawHeaders = []
  for (let i = 0; i < raw.length; i += 2) {
    if (!names.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!)
  }
  return out
}

/** Replaces every `name` header by one with `value`. */
export function setHeader(raw: RawHeaders, name: string, value: string): RawHeaders {
  const lower = name.toLowerCase()
  const out: RawHeaders = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== lower) out.push(raw[i]!, raw[i + 1]!)
  out.push(name, value)
  return out
}

/**
 * Drops hop-by-hop headers. With `upgrade`, keeps the `Upgrade` header and sends `Connection: upgrade`; a
 * `Transfer-Encoding: chunked` request body is kept chunked (Node re-encodes it).
 */
export function stripHopByHop(raw: RawHeaders, opts: { upgrade?: boolean; keepChunked?: boolean } = {}): RawHeaders {
  // one pass for the common case; headers named in `Connection` take a second one
  let named: ReadonlySet<string> = HOP_BY_HOP
  let chunked = false
  let out: RawHeaders = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (name === 'connection') named = withConnectionTokens(named, raw[i + 1]!)
    else if (name === 'transfer-encoding' && /chunked/i.test(raw[i + 1]!)) chunked = true
    if (!HOP_BY_HOP.has(name)) out.push(raw[i]!, raw[i + 1]!)
  }
  if (named !== HOP_BY_HOP) out = withoutHeaders(out, named)
  if (opts.keepChunked === true && chunked) out.push('Transfer-Encoding', 'chunked')
  if (opts.upgrade === true) {
    const up = headerValues(raw, 'upgrade')
    if (up.length > 0) out.push('Connection', 'upgrade', 'Upgrade', up.join(', '))
  }
  return out
}

/** `named` plus the header names listed in a `Connection` value (`upgrade` excepted). */
function withConnectionTokens(named: ReadonlySet<string>, value: string): ReadonlySet<string> {
  const more = new Set(named)
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase()
    if (t !== '' && t !== 'upgrade') more.add(t)
  }
  return more
}

export interface ForwardedInfo {
  /** The client's address as the access port saw it. */
  clientIp: string
  /** The Host the client sent (the gateway's own address for gateway requests). */
  host: string | undefined
  proto: 'http' | 'https'
}

function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function quoteIfNeeded(v: string): string {
  return TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`
}

/** Appends this hop to `X-Forwarded-For` and `Forwarded`, and sets `X-Forwarded-Proto/-Host`. */
export function addForwarded(raw: RawHeaders, info: ForwardedInfo): RawHeaders {
  let xff = ''
  let forwarded = ''
  const out: RawHeaders = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (name === 'x-forwarded-for') xff += `${raw[i + 1]}, `
    else if (name === 'forwarded') forwarded += `${raw[i + 1]}, `
    else if (name !== 'x-forwarded-proto' && name !== 'x-forwarded-host') out.push(raw[i]!, raw[i + 1]!)
  }
  let fwd = `for=${forwardedNode(info.clientIp)};proto=${info.proto}`
  if (info.host !== undefined) fwd += `;host=${quoteIfNeeded(info.host)}`
  out.push('X-Forwarded-For', xff + info.clientIp, 'X-Forwarded-Proto', info.proto, 'Forwarded', forwarded + fwd)
  if (info.host !== undefined) out.push('X-Forwarded-Host', info.host)
  return out
}

/** Response headers to pass on to the client: hop-by-hop ones removed (the access port runs its own keep-alive). */
export function responseHeaders(raw: RawHeaders): RawHeaders {
  return stripHopByHop(raw, { keepChunked: true })
}

/** An HTTP/1.1 request head, for Upgrade requests written straight onto a stream. */
export function requestHead(method: string, path: string, raw: RawHeaders): string {
  let head = `${method} ${path} HTTP/1.1\r\n`
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`
  return `${head}\r\n`
}
