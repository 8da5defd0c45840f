/**
 * A relayed connection through a bounded relay ends when its data allowance is used up; libp2p then closes its streams
 * as if the other side had finished, so an application only sees a short transfer. This watch logs why, and whom the
 * relay's operator should allow, so the cut is not silent.
 */
import type { Connection } from '@libp2p/interface'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { describePath } from '../../p2p/path.ts'

/** Below this many bytes left, a closed limited connection is taken to have run out of its allowance. */
const USED_UP = 64n * 1024n

/** Starts watching; returns a function that stops. */
export function watchLimitedConnections(
  libp2p: WarrenLibp2p,
  log: (level: 'warn', message: string) => void,
): () => void {
  const onClose = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    const left = conn.limits?.bytes
    if (left === undefined || left > USED_UP) return
    const relay = describePath(conn).relay ?? 'its relay'
    // limits follow the reservation of the node being reached: the listener's
    const fix =
      conn.direction === 'outbound'
        ? `ask the relay's operator to add node ${conn.remotePeer} to the relay's allow list; if it is on it, node ${conn.remotePeer} must admit this node (${libp2p.peerId}) with \`warren allow\` or an invite`
        : `ask the relay's operator to add this node (${libp2p.peerId}) to the relay's allow list; if it is on it, admit node ${conn.remotePeer} with \`warren allow\` or an invite`
    log(
      'warn',
      `the relayed connection to ${conn.remotePeer} through relay ${relay} ended: it used up the relay's data limit, ` +
        `so streams on it were cut short; ${fix}`,
    )
  }
  libp2p.addEventListener('connection:close', onClose)
  return () => libp2p.removeEventListener('connection:close', onClose)
}
