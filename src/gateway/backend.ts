/**
 * What the gateway needs from the node it runs on: node names resolved to ids, service streams opened, and a
 * per-node stream slot for each request carried (the access port implements it: src/access/backend.ts).
 */
import type { Stream } from '@libp2p/interface'

/** A node's canonical ids: the base58 peer id and its base36 form (for host names). */
export interface NodeIds {
  id: string
  base36: string
}

export interface GatewayBackend {
  /**
   * Canonical ids for a node name (alias, id, ticket); throws ERR_UNKNOWN_PEER, ERR_BAD_NODE_ID … With
   * `learn: false` (browser requests) a ticket with addresses not known yet throws ERR_UNKNOWN_ADDRESSES instead.
   */
  resolveNode(name: string, opts?: { learn?: boolean }): NodeIds
  /** Opens a `/warren/service/1.0.0` stream to `service` on the node with canonical id `node`. */
  openService(node: string, service: string, opts: { signal: AbortSignal }): Promise<Stream>
  /** Takes one stream slot for the node with canonical id `node` and returns its release; throws ERR_TOO_MANY_STREAMS. */
  acquire(node: string): () => void
}
