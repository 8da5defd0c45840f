/** `host:port` listen addresses for local entry points (`127.0.0.1:5432`, `[::1]:22`, `5432`). */
import { WarrenError } from '../errors.ts'

export interface ListenAddress {
  host: string
  port: number
}

export function parseListenAddress(text: string, defaultHost = '127.0.0.1'): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))?:?(\d+)$/.exec(text.trim())
  const port = Number(m?.[3])
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WarrenError('ERR_BAD_ADDRESS', `"${text}" is not a listen address`, {
      hint: 'Write it as host:port, e.g. 127.0.0.1:5432 or [::1]:5432 (port 0 picks a free port).',
    })
  }
  return { host: m[1] ?? m[2] ?? defaultHost, port }
}

export function formatListenAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
