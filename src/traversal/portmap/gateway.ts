/**
 * The default IPv4 gateway, read from `/proc/net/route` (no dependency), and the address of this host on the
 * interface that leads to it: the internal address a port mapping points to.
 *
 * @packageDocumentation
 */
import { createSocket } from 'node:dgram'
import { readFile } from 'node:fs/promises'

export interface DefaultGateway {
  /** The gateway's address. */
  gateway: string
  /** The interface it is reached on. */
  iface: string
  /** This host's address toward the gateway. */
  local: string
}

/** Parses `/proc/net/route`: the default route (destination 0, mask 0) with the lowest metric, or undefined. */
export function parseRoutes(text: string): { gateway: string; iface: string } | undefined {
  let best: { gateway: string; iface: string; metric: number } | undefined
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    const [iface, dest, gw, flags, , , metric, mask] = f
    // RTF_UP (1) and RTF_GATEWAY (2)
    if (dest !== '00000000' || mask !== '00000000' || (Number.parseInt(flags!, 16) & 3) !== 3) continue
    const n = Number.parseInt(gw!, 16)
    // little-endian hex of the address
    const gateway = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.')
    const m = Number(metric)
    if (best === undefined || m < best.metric) best = { gateway, iface: iface!, metric: m }
  }
  return best === undefined ? undefined : { gateway: best.gateway, iface: best.iface }
}

/** The address the kernel picks to reach `host` (a connected UDP socket sends nothing). */
export function localAddressToward(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4')
    s.once('error', (err) => {
      s.close()
      reject(err)
    })
    s.connect(9, host, () => {
      const { address } = s.address()
      s.close()
      resolve(address)
    })
  })
}

/** The default gateway and this host's address toward it, or undefined when there is no IPv4 default route. */
export async function findDefaultGateway(routeFile = '/proc/net/route'): Promise<DefaultGateway | undefined> {
  const text = await readFile(routeFile, 'utf8').catch(() => '')
  const route = parseRoutes(text)
  if (route === undefined) return undefined
  const local = await localAddressToward(route.gateway).catch(() => undefined)
  return local === undefined ? undefined : { ...route, local }
}
