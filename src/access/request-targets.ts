/**
 * Request targets the access port reads itself: absolute-form proxy URLs, CONNECT authorities, and pages it does
 * not have.
 */
import { WarrenError } from '../errors.ts'

/** Parses an absolute-form target (`http://web.laptop.warren/x`); throws ERR_BAD_REQUEST. */
export function parseProxyUrl(url: string): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new WarrenError('ERR_BAD_REQUEST', `"${url}" is not a valid URL`, {
      hint: 'Send http://<service>.<node>.warren/…',
    })
  }
  if (u.protocol !== 'http:') {
    throw new WarrenError('ERR_BAD_REQUEST', `the HTTP proxy carries http:// URLs, not ${u.protocol}//`, {
      hint: 'For https:// and other protocols the client must use CONNECT (or SOCKS5).',
    })
  }
  return u
}

/** The 404 page for an origin-form path that is neither a gateway path nor the PAC file. */
export function unknownPage(url: string, tld: string): WarrenError {
  const shown = url.length > 100 ? `${url.slice(0, 97)}...` : url
  return new WarrenError('ERR_NO_SUCH_PAGE', `the Warren access port has no page "${shown}"`, {
    hint: `Use /http/<node>/<service>/<path> (gateway), /proxy.pac (browser set-up), or this port as a proxy for <service>.<node>.${tld}.`,
  })
}

/** `host:port` of a CONNECT request target, with the port required. */
export function parseAuthority(authority: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(authority)
  const port = Number(m?.[2])
  if (m === null || port < 1 || port > 65535) {
    throw new WarrenError('ERR_BAD_REQUEST', `CONNECT target "${authority}" is not host:port`, {
      hint: 'Send CONNECT <service>.<node>.warren:<port>.',
      details: { host: authority },
    })
  }
  return { host: m[1]!, port }
}
