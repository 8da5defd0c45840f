/**
 * The local API's wire format, shared by the daemon (server) and {@link WarrenClient} (client).
 *
 * JSON-RPC 2.0 over a Unix socket, one JSON message per line (`\n`-terminated, UTF-8). Requests carry an `id`;
 * answers come back in any order. Errors are JSON-RPC errors whose `data` is `WarrenError.toJSON()`.
 *
 * `stream.open` upgrades the connection: after its result line the socket carries the remote service's bytes both
 * ways in frames (src/daemon/stream-frames.ts), and no more JSON is read or written on it. Each frame is a 1-byte
 * type, a 4-byte big-endian length and the payload: DATA (0, at most 64 KiB of the stream), END (1, empty: this
 * direction is finished, like a FIN) and ABORT (2, JSON `{code, message}`: the stream failed). A socket that
 * closes before END went both ways is an abort too, so a cut stream is never taken for a complete one.
 */
import type { ServiceConfig } from '../config/schema.ts'
import type { LookupResult } from '../discovery/resolver.ts'
import type { WarrenErrorJSON } from '../errors.ts'
import type { InviteSummary } from '../node/invites.ts'
import type { ReloadResult } from '../node/reload.ts'
import type {
  ForwardInfo,
  NetcheckResult,
  NodeIdentity,
  NodeStatus,
  PeerInfo,
  PingResult,
  RemoteCallResult,
  ServiceInfo,
} from '../node/types.ts'
import type { AllowChange, InviteResult } from './admission.ts'

/** Longest request line the API servers accept; a longer one closes the connection. */
export const MAX_LINE_BYTES = 1024 * 1024

/**
 * Longest answer line a client accepts from its own daemon or relay: `warren relay status --json` lists every
 * reservation (~250 bytes each, 2.5 MB at 10,000).
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024

/** JSON-RPC error codes used on the local API. */
export const RPC_ERRORS = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  /** A WarrenError raised by the method; `data` holds it. */
  application: -32000,
} as const

export interface RpcRequest {
  jsonrpc: '2.0'
  id: number | string
  method: string
  params?: unknown
}

export interface RpcError {
  code: number
  message: string
  data?: WarrenErrorJSON
}

export type RpcResponse =
  | { jsonrpc: '2.0'; id: number | string | null; result: unknown }
  | { jsonrpc: '2.0'; id: number | string | null; error: RpcError }

/** Where to reach a node: alias, base58/base36 id or ticket, plus optional extra multiaddrs. */
export interface NodeRef {
  node: string
  addrs?: string[]
}

/** Every method: its params and its result. */
export interface ApiMethods {
  id: { params: undefined; result: NodeIdentity }
  status: { params: undefined; result: NodeStatus }
  'services.list': { params: undefined; result: ServiceInfo[] }
  'services.add': {
    params: { name: string; target: string; allow?: string[]; kubo?: boolean; replace?: boolean }
    result: ServiceInfo
  }
  'services.remove': { params: { name: string }; result: { name: string; source: ServiceInfo['source'] } }
  'peers.list': { params: undefined; result: PeerInfo[] }
  /** `check: false` skips the service check; a refusal fails the call, other check failures are in `result.check`. */
  'forward.add': {
    /** `public: true` allows a non-loopback `listen` (otherwise refused with ERR_USAGE). */
    params: NodeRef & { service: string; listen: string; check?: boolean; public?: boolean }
    result: ForwardInfo
  }
  'forward.list': { params: undefined; result: ForwardInfo[] }
  'forward.remove': { params: { listen: string }; result: { listen: string } }
  ping: { params: NodeRef; result: PingResult }
  netcheck: { params: undefined; result: NetcheckResult }
  lookup: { params: { node: string; fresh?: boolean; all?: boolean }; result: LookupResult }
  'daemon.stop': { params: undefined; result: { stopping: true; pid: number } }
  /** Reads config.json again and applies peers, services, allow lists and limits; an invalid one is refused. */
  'daemon.reload': { params: undefined; result: ReloadResult }
  'stream.open': { params: NodeRef & { service: string }; result: { node: string; service: string } }
  /** A method of another node over `/warren/rpc/1.0.0`; also reachable as the method name `<node>.<method>`. */
  'node.call': { params: NodeRef & { method: string; params?: unknown }; result: RemoteCallResult }
  /** Adds a node (id, ticket or `peers` alias) to a service's allow list, persisted and applied at once. */
  'services.allow': { params: { service: string; node: string }; result: AllowChange }
  /** Takes a node off a service's allow list, persisted and applied at once (its open streams are reset). */
  'services.deny': { params: { service: string; node: string }; result: AllowChange }
  /** A one-time invite to a service, valid for `ttlMs` (default 15 min); the code is shown only here. */
  'invites.create': { params: { service: string; ttlMs?: number }; result: InviteResult }
  /** The invites kept: open, redeemed, and expired within 7 days; never their codes. */
  'invites.list': { params: undefined; result: InviteSummary[] }
  /** Forgets an invite (its code stops working); ERR_INVITE_NOT_FOUND for an unknown id. */
  'invites.revoke': { params: { inviteId: string }; result: InviteSummary }
}

export type ApiMethod = keyof ApiMethods
export type ParamsOf<M extends ApiMethod> = ApiMethods[M]['params']
export type ResultOf<M extends ApiMethod> = ApiMethods[M]['result']

/** A service entry as `services.add` passes it to the node. */
export function serviceConfigOf(p: ApiMethods['services.add']['params']): ServiceConfig {
  const svc: ServiceConfig = { target: p.target, kubo: p.kubo ?? false }
  if (p.allow !== undefined) svc.allow = p.allow
  return svc
}

/**
 * Splits a byte stream into lines, one at a time, so a reader can stop after a line that switches the
 * connection to raw bytes and take the rest with {@link LineSplitter.rest}.
 */
export class LineSplitter {
  #buf: Buffer = Buffer.alloc(0)
  readonly #max: number

  /** `maxLineBytes`: {@link MAX_LINE_BYTES} for requests, {@link MAX_ANSWER_BYTES} for answers. */
  constructor(maxLineBytes = MAX_LINE_BYTES) {
    this.#max = maxLineBytes
  }

  /** Adds bytes; throws when an unfinished line grows past the longest allowed. */
  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    if (this.#buf.length > this.#max && this.#buf.indexOf(10) === -1) {
      throw new Error(`a line is longer than ${this.#max} bytes`)
    }
  }

  /** The next complete line without its newline, or undefined when none is complete yet. */
  shift(): string | undefined {
    const nl = this.#buf.indexOf(10)
    if (nl === -1) return undefined
    const line = this.#buf.subarray(0, nl).toString('utf8')
    this.#buf = this.#buf.subarray(nl + 1)
    return line
  }

  /** Whether a complete line waits to be shifted. */
  hasLine(): boolean {
    return this.#buf.indexOf(10) !== -1
  }

  /** Takes every byte not yet returned as a line. */
  rest(): Buffer {
    const out = this.#buf
    this.#buf = Buffer.alloc(0)
    return out
  }
}
