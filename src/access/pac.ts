/**
 * The proxy auto-config file served at `/proxy.pac`: `*.warren` (and the bare TLD) through the access port's
 * HTTP proxy, everything else DIRECT, so a browser can use it without sending other traffic to Warren.
 */

export const PAC_PATH = '/proxy.pac'
export const PAC_CONTENT_TYPE = 'application/x-ns-proxy-autoconfig'

/** The PAC script for an access port reachable at `hostPort` (e.g. `127.0.0.1:4780`). */
export function pacFile(hostPort: string, tld: string): string {
  return `// Warren: send only .${tld} names through the Warren access port; everything else goes direct.
function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  if (host === ${JSON.stringify(tld)} || dnsDomainIs(host, ${JSON.stringify(`.${tld}`)})) {
    return ${JSON.stringify(`PROXY ${hostPort}`)};
  }
  return "DIRECT";
}
`
}
