/**
 * The NAT lab's address plan. Every address is inside 198.18.0.0/15 (RFC 2544 benchmarking range):
 *
 * ```
 *   public segment 198.18.0.0/24, a bridge in namespace `sw`
 *     relay  198.18.0.1      (first public host; more public hosts get .4, .5, …)
 *     ra     198.18.0.2  ── LAN 198.19.1.0/24 ── a 198.19.1.2   (router ra is 198.19.1.1)
 *     rb     198.18.0.3  ── LAN 198.19.2.0/24 ── b 198.19.2.2   (router rb is 198.19.2.1)
 * ```
 *
 * @packageDocumentation
 */

/** How a router translates: no NAT, port-preserving endpoint-independent mapping, or a random port per destination. */
export type NatKind = 'none' | 'cone' | 'symmetric'

export const NAT_KINDS: readonly NatKind[] = ['none', 'cone', 'symmetric']

export type RouterName = 'ra' | 'rb'
export type LanHostName = 'a' | 'b'

export const PUBLIC_PREFIX = '198.18.0'
export const PUBLIC_CIDR = '198.18.0.0/24'

export interface RouterPlan {
  name: RouterName
  wan: string
  lanGateway: string
  lanCidr: string
  host: LanHostName
  hostAddress: string
}

export const ROUTERS: readonly RouterPlan[] = [
  {
    name: 'ra',
    wan: '198.18.0.2',
    lanGateway: '198.19.1.1',
    lanCidr: '198.19.1.0/24',
    host: 'a',
    hostAddress: '198.19.1.2',
  },
  {
    name: 'rb',
    wan: '198.18.0.3',
    lanGateway: '198.19.2.1',
    lanCidr: '198.19.2.0/24',
    host: 'b',
    hostAddress: '198.19.2.2',
  },
]

/** Address of the i-th public host: .1 for the first, then .4, .5, … (the routers hold .2 and .3). */
export function publicHostAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 200)
    throw new RangeError(`public host index ${index} out of range`)
  return `${PUBLIC_PREFIX}.${index === 0 ? 1 : index + 3}`
}

/** Host names may only use letters and digits so that namespace names stay short and safe. */
export function checkHostName(name: string): void {
  if (
    !/^[a-z][a-z0-9]{0,7}$/.test(name) ||
    name === 'sw' ||
    name === 'ra' ||
    name === 'rb' ||
    name === 'a' ||
    name === 'b'
  ) {
    throw new RangeError(
      `public host name '${name}' is reserved or malformed: use 1-8 lowercase letters/digits, not sw, ra, rb, a or b`,
    )
  }
}
