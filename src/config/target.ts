/**
 * Service targets: where a host connects when a peer opens a service stream.
 *
 * Targets are multiaddrs ending in `/tcp/<port>`: `/tcp/8080` (127.0.0.1), `/ip4/10.0.0.4/tcp/5432`,
 * `/ip6/::1/tcp/22`, `/dns4/db.lan/tcp/5432` (also `dns6`, `dns`).
 */
import { multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'

export interface TcpTarget {
  host: string
  port: number
  /** Address family to resolve a name with; undefined lets the resolver choose. */
  family?: 4 | 6
}

const HOST_PROTOCOLS: Record<string, 4 | 6 | undefined> = { ip4: 4, ip6: 6, dns4: 4, dns6: 6, dns: undefined }

/** Why `text` is not a usable target, or undefined when it is. */
export function targetProblem(text: string): string | undefined {
  try {
    parseTarget(text)
    return undefined
  } catch (err) {
    return (err as WarrenError).message
  }
}

/** Parses a target multiaddr, or throws ERR_BAD_TARGET naming the problem. */
export function parseTarget(text: string): TcpTarget {
  const fail = (why: string): never => {
    throw new WarrenError('ERR_BAD_TARGET', `"${text}" ${why}`, {
      hint: 'Write a target as /tcp/<port> (this machine) or /ip4/<addr>/tcp/<port>, /ip6/…, /dns4|dns6|dns/<name>/tcp/<port>.',
      details: { target: text },
    })
  }
  if (typeof text !== 'string' || !text.startsWith('/')) fail('is not a multiaddr (it must start with "/")')
  const portMatch = /\/tcp\/([^/]*)$/.exec(text)
  if (portMatch !== null) {
    const port = Number(portMatch[1])
    if (!/^\d+$/.test(portMatch[1]!) || port < 1 || port > 65535) fail('is not a valid port (1-65535)')
  }
  let components: { name: string; value?: string }[]
  try {
    components = multiaddr(text).getComponents()
  } catch (err) {
    return fail(`is not a valid multiaddr (${(err as Error).message})`)
  }
  const last = components.at(-1)
  if (last?.name !== 'tcp') fail('does not end in /tcp/<port>')
  const port = Number(last!.value)
  if (components.length === 1) return { host: '127.0.0.1', port }
  if (components.length !== 2) fail('has more parts than <host>/tcp/<port>')
  const first = components[0]!
  if (!(first.name in HOST_PROTOCOLS)) fail(`uses /${first.name}; use /ip4, /ip6, /dns4, /dns6 or /dns`)
  const family = HOST_PROTOCOLS[first.name]
  return family === undefined ? { host: first.value!, port } : { host: first.value!, port, family }
}

/** `host:port` for messages, with brackets for IPv6. */
export function formatTarget(t: TcpTarget): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`
}
