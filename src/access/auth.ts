/**
 * Credentials on the access port when it listens off loopback (`proxy.auth`): HTTP Basic in
 * `Proxy-Authorization` (proxy requests, CONNECT) or `Authorization` (gateway, PAC), compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto'
import { WarrenError } from '../errors.ts'

/** The request headers that may carry credentials (Node's `IncomingMessage.headers` is one). */
export interface AuthHeaders {
  authorization?: string | undefined
  'proxy-authorization'?: string | undefined
}

export interface Credentials {
  username: string
  password: string
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Whether an `Authorization`-style header value carries these Basic credentials. */
export function basicMatches(value: string | undefined, creds: Credentials): boolean {
  const m = /^\s*basic\s+([A-Za-z0-9+/=._-]+)\s*$/i.exec(value ?? '')
  if (m === null) return false
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const i = decoded.indexOf(':')
  if (i < 0) return false
  // evaluate both comparisons, so timing does not tell which part was wrong
  const u = same(decoded.slice(0, i), creds.username)
  const p = same(decoded.slice(i + 1), creds.password)
  return u && p
}

export function authError(sent: boolean): WarrenError {
  return new WarrenError(
    'ERR_PROXY_AUTH',
    sent
      ? 'the proxy credentials are wrong'
      : 'this Warren access port listens off loopback and needs the credentials from proxy.auth',
    {
      hint: 'Send the user name and password of proxy.auth in config.json (curl --proxy-user user:pass, socks5h://user:pass@host:port).',
    },
  )
}

/**
 * Checks a request: undefined when it may pass, else the error. `origin` requests (gateway, PAC) may use
 * `Authorization` as browsers do for servers; proxy requests must use `Proxy-Authorization`.
 */
export function checkHttpAuth(
  headers: AuthHeaders,
  creds: Credentials | undefined,
  origin: boolean,
): WarrenError | undefined {
  if (creds === undefined) return undefined
  const proxyAuth = headers['proxy-authorization']
  if (basicMatches(proxyAuth, creds)) return undefined
  if (origin && basicMatches(headers.authorization, creds)) return undefined
  return authError(proxyAuth !== undefined || (origin && headers.authorization !== undefined))
}
