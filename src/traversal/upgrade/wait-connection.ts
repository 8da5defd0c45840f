/**
 * Waits for an open connection to `peer` that `matches` (already open, or the next `connection:open` that matches);
 * rejects with the signal's reason when `signal` aborts.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'

export function waitForConnection(
  node: Libp2p,
  peer: PeerId,
  matches: (c: Connection) => boolean,
  signal: AbortSignal,
): Promise<Connection> {
  const find = (): Connection | undefined => node.getConnections(peer).find((c) => c.status === 'open' && matches(c))
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const c = find()
      if (c === undefined) return
      cleanup()
      resolve(c)
    }
    const onAbort = (): void => {
      cleanup()
      reject(signal.reason)
    }
    const cleanup = (): void => {
      node.removeEventListener('connection:open', check)
      signal.removeEventListener('abort', onAbort)
    }
    node.addEventListener('connection:open', check)
    signal.addEventListener('abort', onAbort)
    check()
  })
}
