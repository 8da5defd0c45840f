/**
 * Refuses ranges that collide with the host's routes: 100.64.0.0/10 is also Tailscale's and carrier-grade NAT's, and
 * capturing it would cut those off. Every route in every table (`ip -j route show table all`, both families, local
 * routes of addresses included) is compared; a default route is not a collision.
 */
import { WarrenError } from '../../errors.ts'
import { type Cidr, formatCidr, overlaps, parseCidr } from './cidr.ts'
import { runTool } from './tools.ts'

interface RouteJson {
  type?: string
  dst?: string
  dev?: string
  table?: string
}

/** A route as `ip route` prints it, for messages: `100.64.0.0/10 dev tailscale0 table 52`. */
function describe(r: RouteJson): string {
  const parts = [r.type !== undefined && r.type !== 'unicast' ? `${r.type} ` : '', r.dst ?? '?']
  if (r.dev !== undefined) parts.push(` dev ${r.dev}`)
  if (r.table !== undefined && r.table !== 'main') parts.push(` table ${r.table}`)
  return parts.join('')
}

/** The routes of one family, parsed; entries without a prefix (`default`) are left out. */
export async function routesOf(family: 4 | 6): Promise<{ route: RouteJson; prefix: Cidr }[]> {
  const { stdout } = await runTool('ip', ['-j', `-${family}`, 'route', 'show', 'table', 'all'])
  const out: { route: RouteJson; prefix: Cidr }[] = []
  for (const route of JSON.parse(stdout || '[]') as RouteJson[]) {
    if (route.dst === undefined || route.dst === 'default') continue
    try {
      const prefix = parseCidr(route.dst)
      if (prefix.prefixLength > 0) out.push({ route, prefix })
    } catch {
      // a destination ip prints in a form that is no prefix: not a collision candidate
    }
  }
  return out
}

/** Throws ERR_TRANSPARENT_RANGE naming the first route that overlaps `range` and the config key to change. */
export async function checkNoOverlap(range: Cidr, key: 'ipv4Range' | 'ipv6Range'): Promise<void> {
  for (const { route, prefix } of await routesOf(range.family)) {
    if (!overlaps(range, prefix)) continue
    const r = describe(route)
    throw new WarrenError(
      'ERR_TRANSPARENT_RANGE',
      `transparent.${key} ${formatCidr(range)} overlaps the route "${r}" on this host: capturing it would cut that route off`,
      {
        hint: `Set "transparent": { "${key}": "<a free prefix>" } in config.json (one no route uses; \`ip -${range.family} route show table all\` lists them), or remove the route "${r}" if it is stale.`,
        details: { key: `transparent.${key}`, range: formatCidr(range), route: r },
      },
    )
  }
}
