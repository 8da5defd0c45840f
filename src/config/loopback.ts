/** Whether a listen host is a loopback address (127.0.0.0/8, ::1, localhost), where no proxy credentials are needed. */
import { isIP } from 'node:net'

export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (h === 'localhost') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h)
  return false
}
