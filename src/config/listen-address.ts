/**
 * `host:port` listen addresses for local entry points: `127.0.0.1:5432`, `[::1]:22`, `0.0.0.0:8080`, `localhost:80`,
 * or a bare port `5432`, which means `127.0.0.1:5432` (this machine only). Anything else is an ERR_BAD_ADDRESS that
 * says what is wrong with it.
 */
import { isIP } from 'node:net'
import { WarrenError } from '../errors.ts'
import { isLoopbackHost } from './loopback.ts'

export interface ListenAddress {
  host: string
  port: number
}

export const LISTEN_ADDRESS_HINT =
  'Write it as host:port, e.g. 127.0.0.1:5432 or [::1]:5432, or a bare port such as 5432 for 127.0.0.1 (port 0 picks a free port).'

/** A host name: dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** What is wrong with a port's text, or undefined. */
function portProblem(p: string): string | undefined {
  if (p === '') return 'it has no port after the colon'
  if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) return `port ${JSON.stringify(p)} is not a number from 0 to 65535`
  return undefined
}

type Parsed = ListenAddress | { problem: string }

function parse(text: string, defaultHost: string): Parsed {
  const t = text.trim()
  if (t === '') return { problem: 'it is empty' }
  if (/^\d+$/.test(t)) {
    const p = portProblem(t)
    return p === undefined ? { host: defaultHost, port: Number(t) } : { problem: p }
  }
  if (t.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/s.exec(t)
    if (m === null) return { problem: 'an IPv6 address in brackets must be followed by :port, e.g. [::1]:5432' }
    if (isIP(m[1]!) !== 6) return { problem: `${JSON.stringify(m[1])} in brackets is not an IPv6 address` }
    if (m[2] === undefined) return { problem: 'it has no port (write [host]:port)' }
    const p = portProblem(m[2])
    return p === undefined ? { host: m[1]!, port: Number(m[2]) } : { problem: p }
  }
  const colon = t.lastIndexOf(':')
  if (colon < 0) return { problem: 'it has no port (write host:port, or a bare port for 127.0.0.1)' }
  const host = t.slice(0, colon)
  const port = t.slice(colon + 1)
  if (host.includes(':')) return { problem: 'an IPv6 address needs brackets, e.g. [::1]:5432' }
  if (host === '') return { problem: 'it has no host before the colon (write 127.0.0.1:port, or just the port)' }
  if (isIP(host) !== 4 && !HOST_NAME.test(host)) {
    return { problem: `${JSON.stringify(host)} is not an IP address or a host name` }
  }
  const p = portProblem(port)
  return p === undefined ? { host, port: Number(port) } : { problem: p }
}

/** What is wrong with `text` as a listen address (e.g. `it has no port`), or undefined when it is one. */
export function listenAddressProblem(text: string): string | undefined {
  const r = parse(text, '127.0.0.1')
  return 'problem' in r ? r.problem : undefined
}

/** Parses `host:port`, `[v6]:port` or a bare port (on `defaultHost`); throws ERR_BAD_ADDRESS. */
export function parseListenAddress(text: string, defaultHost = '127.0.0.1'): ListenAddress {
  const r = parse(text, defaultHost)
  if ('problem' in r) {
    throw new WarrenError('ERR_BAD_ADDRESS', `${JSON.stringify(text)} is not a listen address: ${r.problem}`, {
      hint: LISTEN_ADDRESS_HINT,
    })
  }
  return r
}

export function formatListenAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/** Whether a listen address (already valid) is reachable from other machines, i.e. not loopback. */
export function isPublicListen(text: string): boolean {
  return !isLoopbackHost(parseListenAddress(text).host)
}
