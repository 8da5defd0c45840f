/** Request targets the access port reads itself: absolute-form proxy URLs, and pages it does not have. */
import { WarrenError } from '../errors.ts'

/** Parses an absolute-form target (`http://web.laptop.warren/x`); throws ERR_BAD_NAME. */
export function parseProxyUrl(url: string): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new WarrenError('ERR_BAD_NAME', `"${url}" is not a valid URL`, {
      hint: 'Send http://<service>.<node>.warren/…',
    })
  }
  if (u.protocol !== 'http:') {
    throw new WarrenError('ERR_BAD_NAME', `the HTTP proxy carries http:// URLs, not ${u.protocol}//`, {
      hint: 'For https:// and other protocols the client must use CONNECT (or SOCKS5).',
    })
  }
  return u
}

/** The 404 page for an origin-form path that is neither a gateway path nor the PAC file. */
export function unknownPage(url: string, tld: string): WarrenError {
  const shown = url.length > 100 ? `${url.slice(0, 97)}...` : url
  return new WarrenError('ERR_BAD_NAME', `the Warren access port has no page "${shown}"`, {
    hint: `Use /http/<node>/<service>/<path> (gateway), /proxy.pac (browser set-up), or this port as a proxy for <service>.<node>.${tld}.`,
  })
}
