/**
 * The fast path's head rewriting in one pass each (fast-path.ts): the same result as the full path's chain of
 * `stripHopByHop` → `addForwarded` → `setHeader('Host')` → `setHeader('X-Forwarded-Prefix')` → `requestHead` for
 * requests, and `responseHeaders` → `rewriteLocation` plus what Node's `ServerResponse` adds (Date, keep-alive)
 * for responses; test/gateway/fast-heads.test.ts checks both against those functions.
 */
import { HOP_BY_HOP, type RawHeaders } from '../../http/forward-headers.ts'

/** Request headers the gateway sets itself (the client's are dropped or, for the X-Forwarded-For chain, extended). */
const REPLACED = new Set(['x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'host'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Header names listed in `Connection` values that are not hop-by-hop already (`upgrade` excepted). */
function connectionNamed(raw: Readonly<RawHeaders>, lower: string[]): Set<string> | undefined {
  let named: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (lower[i >> 1] !== 'connection') continue
    for (const token of raw[i + 1]!.split(',')) {
      const t = token.trim().toLowerCase()
      if (t === '' || t === 'upgrade' || HOP_BY_HOP.has(t)) continue
      named ??= new Set()
      named.add(t)
    }
  }
  return named
}

function lowerNames(raw: Readonly<RawHeaders>): string[] {
  const lower = new Array<string>(raw.length >> 1)
  for (let i = 0; i < raw.length; i += 2) lower[i >> 1] = raw[i]!.toLowerCase()
  return lower
}

export interface UpstreamHeadSpec {
  method: string
  path: string
  clientIp: string
  /** The Host the client sent. */
  clientHost: string
  /** Host for the service. */
  host: string
  /** X-Forwarded-Prefix, for gateway requests. */
  prefix: string | undefined
  chunked: boolean
}

/** The request head sent to the service. */
export function upstreamRequestHead(raw: Readonly<RawHeaders>, s: UpstreamHeadSpec): string {
  const lower = lowerNames(raw)
  const named = connectionNamed(raw, lower)
  let out = `${s.method} ${s.path} HTTP/1.1\r\n`
  let xff = ''
  let forwarded = ''
  for (let i = 0; i < raw.length; i += 2) {
    const name = lower[i >> 1]!
    if (HOP_BY_HOP.has(name) || named?.has(name) === true) continue
    if (REPLACED.has(name)) {
      if (name === 'x-forwarded-for') xff += `${raw[i + 1]}, `
      else if (name === 'forwarded') forwarded += `${raw[i + 1]}, `
      continue
    }
    if (s.prefix !== undefined && name === 'x-forwarded-prefix') continue
    out += `${raw[i]}: ${raw[i + 1]}\r\n`
  }
  const ip = s.clientIp
  const node = ip.includes(':') ? `"[${ip}]"` : ip
  const host = TOKEN.test(s.clientHost) ? s.clientHost : `"${s.clientHost.replace(/["\\]/g, '\\$&')}"`
  out += `X-Forwarded-For: ${xff}${ip}\r\nX-Forwarded-Proto: http\r\nForwarded: ${forwarded}for=${node};proto=http;host=${host}\r\n`
  out += `X-Forwarded-Host: ${s.clientHost}\r\nHost: ${s.host}\r\n`
  if (s.prefix !== undefined) out += `X-Forwarded-Prefix: ${s.prefix}\r\n`
  if (s.chunked) out += 'Transfer-Encoding: chunked\r\n'
  return `${out}\r\n`
}

export interface ClientHeadSpec {
  status: number
  reason: string
  /** Gateway prefix: a `Location` starting with one `/` goes under it. */
  prefix: string | undefined
  /** `Date` when the service sent none. */
  date: string
  /** The service's body is close-delimited and goes to the client chunked. */
  chunk: boolean
  /** The client connection closes after this response. */
  close: boolean
  keepAliveSec: number
}

/** The response head sent to the client. */
export function clientResponseHead(raw: Readonly<RawHeaders>, s: ClientHeadSpec): string {
  const lower = lowerNames(raw)
  const named = connectionNamed(raw, lower)
  let out = `HTTP/1.1 ${s.status} ${s.reason}\r\n`
  let chunked = false
  let date = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = lower[i >> 1]!
    let value = raw[i + 1]!
    if (HOP_BY_HOP.has(name)) {
      if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true
      continue
    }
    if (named?.has(name) === true) continue
    if (name === 'date') date = true
    else if (name === 'location' && s.prefix !== undefined && value.startsWith('/') && !value.startsWith('//'))
      value = s.prefix + value
    out += `${raw[i]}: ${value}\r\n`
  }
  if (chunked || s.chunk) out += 'Transfer-Encoding: chunked\r\n'
  if (!date) out += `Date: ${s.date}\r\n`
  out += s.close ? 'Connection: close\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${s.keepAliveSec}\r\n`
  return `${out}\r\n`
}
