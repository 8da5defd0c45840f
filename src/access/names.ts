/**
 * Warren hostnames: `<service>.<node>.<tld>` names a service, `<node>.<tld>` names a node, where `<node>` is a
 * `peers` alias or the base36 node id and `<tld>` is `warren` unless configured otherwise. Anything else is not
 * Warren's to answer: the access port refuses it (it is not an open proxy) and the DNS server answers REFUSED.
 *
 * @example
 * ```ts
 * parseWarrenHost('web.laptop.warren')        // { kind: 'service', service: 'web', node: 'laptop' }
 * parseWarrenHost('laptop.warren')            // { kind: 'node', node: 'laptop' }
 * parseWarrenHost('example.com')              // throws ERR_NOT_WARREN_NAME
 * ```
 */
import { WarrenError } from '../errors.ts'

export const DEFAULT_TLD = 'warren'

export type WarrenName = { kind: 'service'; service: string; node: string } | { kind: 'node'; node: string }

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** Lower-cases, drops a trailing dot and an IPv6 bracket pair; the port is not part of a hostname here. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase()
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1)
  return h.endsWith('.') ? h.slice(0, -1) : h
}

/** True when `host` ends in `.<tld>` (or is the TLD itself). */
export function isWarrenHost(host: string, tld = DEFAULT_TLD): boolean {
  const h = normalizeHost(host)
  return h === tld || h.endsWith(`.${tld}`)
}

/**
 * Parses a Warren hostname; throws ERR_NOT_WARREN_NAME outside the TLD and ERR_BAD_NAME for a name inside it
 * that has the wrong shape.
 */
export function parseWarrenHost(host: string, tld = DEFAULT_TLD): WarrenName {
  const h = normalizeHost(host)
  if (!isWarrenHost(h, tld)) {
    throw new WarrenError(
      'ERR_NOT_WARREN_NAME',
      `"${h}" is not a .${tld} name: Warren only reaches <service>.<node>.${tld}, it is not an open proxy`,
      {
        hint: `Use <service>.<node>.${tld} (node = alias from peers or base36 node id), or send other traffic directly, e.g. with the PAC file at /proxy.pac.`,
        details: { host: h },
      },
    )
  }
  const labels = h === tld ? [] : h.slice(0, -(tld.length + 1)).split('.')
  const shape = `<service>.<node>.${tld} or <node>.${tld}`
  const bad = (why: string): never => {
    throw new WarrenError('ERR_BAD_NAME', `"${h}" ${why}`, {
      hint: `Write ${shape}, where node is an alias from peers or the base36 node id (k51qzi5uqu5…) and service a service name.`,
      details: { host: h },
    })
  }
  if (labels.length === 0) return bad(`names no node: use ${shape}`)
  if (labels.length > 2) return bad(`has ${labels.length} labels before .${tld}; use ${shape}`)
  for (const l of labels) if (!LABEL.test(l)) bad(`has the label "${l}", which is not a valid service or node name`)
  return labels.length === 2
    ? { kind: 'service', service: labels[0]!, node: labels[1]! }
    : { kind: 'node', node: labels[0]! }
}

/** Like {@link parseWarrenHost}, but a service is required (the proxy reaches services, not bare nodes). */
export function parseServiceHost(host: string, tld = DEFAULT_TLD): { service: string; node: string } {
  const name = parseWarrenHost(host, tld)
  if (name.kind === 'service') return { service: name.service, node: name.node }
  throw new WarrenError('ERR_BAD_NAME', `"${normalizeHost(host)}" names a node but no service`, {
    hint: `Put the service in front: <service>.${name.node}.${tld}.`,
    details: { host: normalizeHost(host) },
  })
}
