/**
 * `warren up --listen <multiaddr>`: node listen addresses are multiaddrs. A bare port or a `host:port` (the syntax
 * of `warren forward --listen`) is refused with ERR_BAD_ADDRESS naming the multiaddr that was probably meant.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../errors.ts'

/** The multiaddr a user probably meant by a bare port or `host:port`, or undefined. */
function meant(text: string): string | undefined {
  if (/^\d{1,5}$/.test(text)) return `/ip4/0.0.0.0/tcp/${text}`
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text)
  if (v4 !== null) return `/ip4/${v4[1]}/tcp/${v4[2]}`
  const v6 = /^\[([0-9a-f:.]+)\]:(\d{1,5})$/i.exec(text)
  if (v6 !== null) return `/ip6/${v6[1]}/tcp/${v6[2]}`
  return undefined
}

/** Checks each `--listen` value of `warren up`; throws ERR_BAD_ADDRESS for the first that is not a multiaddr. */
export function checkListenMultiaddrs(values: string[]): string[] {
  for (const text of values) {
    let problem: string | undefined
    if (!text.startsWith('/')) problem = 'a node listen address is a multiaddr, starting with "/"'
    else {
      try {
        multiaddr(text)
      } catch (err) {
        problem = `it does not parse as a multiaddr: ${(err as Error).message}`
      }
    }
    if (problem === undefined) continue
    const guess = meant(text)
    throw new WarrenError('ERR_BAD_ADDRESS', `--listen ${JSON.stringify(text)} is not a multiaddr: ${problem}`, {
      hint:
        guess !== undefined
          ? `Write --listen ${guess} (host:port and bare ports are for \`warren forward --listen\`).`
          : 'Write a multiaddr such as /ip4/0.0.0.0/tcp/4781 or /ip6/::/tcp/4781.',
      details: { listen: text },
    })
  }
  return values
}
