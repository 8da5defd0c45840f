/**
 * A node's `/warren/rpc/1.0.0` side (docs/rpc.md): its methods (the built-ins `_ping`, `_info`, `_services`, and the
 * ones library users register), who may call them (config `rpc`), the server answering other nodes, and calls to
 * other nodes over a connection the node's dial policy made.
 */
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Config } from '../config/schema.ts'
import { isWarrenError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { describePath } from '../p2p/path.ts'
import { registerBuiltins } from '../rpc/builtins.ts'
import { callOn } from '../rpc/client.ts'
import { type RpcAccess, RpcMethods } from '../rpc/methods.ts'
import { RpcServer } from '../rpc/server.ts'
import { allowedIds, peerIds, type ServiceRegistry } from '../services/registry.ts'
import { VERSION } from '../version.ts'
import type { RemoteCallResult } from './types.ts'

/** `rpc.allow` as node ids (undefined: every node), `rpc.public` as a set; from the config. */
export function rpcAccess(config: Config): RpcAccess {
  const { allow } = config.rpc
  const everyone = allow?.includes('*') === true
  const ids = everyone
    ? undefined
    : allow === undefined
      ? peerIds(config.peers)
      : allowedIds(allow, config.peers, 'rpc.allow')
  const open = new Set(config.rpc.public)
  return { allowed: () => ids, public: () => open }
}

export class NodeRpc {
  readonly methods: RpcMethods
  readonly #server: RpcServer
  readonly #libp2p: WarrenLibp2p
  readonly #config: Config
  /** Who may call: replaced by {@link NodeRpc.prepareReload} on a config reload. */
  #access: RpcAccess

  constructor(
    libp2p: WarrenLibp2p,
    registry: ServiceRegistry,
    config: Config,
    opts: { startedAt: number; log: Logger },
  ) {
    this.#libp2p = libp2p
    this.#config = config
    this.#access = rpcAccess(config)
    this.methods = new RpcMethods({ allowed: () => this.#access.allowed(), public: () => this.#access.public() })
    registerBuiltins(this.methods, {
      id: libp2p.peerId.toString(),
      version: VERSION,
      startedAt: opts.startedAt,
      protocols: () => libp2p.getProtocols().sort(),
      servicesFor: (caller) => registry.usableBy(peerIdFromString(caller)),
    })
    this.#server = new RpcServer(libp2p, this.methods, {
      timeoutMs: config.rpc.timeoutMs,
      maxMessageBytes: config.rpc.maxMessageBytes,
      log: opts.log,
    })
  }

  /**
   * Checks `rpc.allow` and `rpc.public` of a new config (throws ERR_UNKNOWN_PEER for an allow entry it cannot
   * resolve) and returns the function that applies them; the server's time-out and size limit stay.
   */
  prepareReload(config: Config): () => void {
    const next = rpcAccess(config)
    return () => {
      this.#access = next
    }
  }

  start(): Promise<void> {
    return this.#server.start()
  }

  stop(): Promise<void> {
    return this.#server.stop()
  }

  /**
   * Calls `method` on the node at the other end of a connection `connect()` makes. A connection that closed
   * before the call's stream could be opened (it was replaced or pruned meanwhile) is made again, once; a call that
   * was sent is never repeated.
   */
  async call(connect: () => Promise<Connection>, method: string, params: unknown): Promise<RemoteCallResult> {
    const opts = {
      selfId: this.#libp2p.peerId.toString(),
      timeoutMs: this.#config.rpc.timeoutMs + 5_000,
      maxMessageBytes: this.#config.rpc.maxMessageBytes,
    }
    for (let attempt = 1; ; attempt++) {
      const conn = await connect()
      const start = performance.now()
      try {
        const result = await callOn(conn, method, params, opts)
        const rttMs = Math.round((performance.now() - start) * 1000) / 1000
        return { id: conn.remotePeer.toString(), result, rttMs, path: describePath(conn) }
      } catch (err) {
        if (attempt === 1 && isWarrenError(err, 'ERR_DIAL_FAILED') && conn.status !== 'open') continue
        throw err
      }
    }
  }
}
