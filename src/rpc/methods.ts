/**
 * The methods a node answers on `/warren/rpc/1.0.0`, and who may call each one.
 *
 * Who may call: a method's own `allow` when it was registered with one, else the node's `rpc.allow` (config; default:
 * the nodes in `peers`), and a method named in `rpc.public` may be called by every node (every connection is
 * authenticated by Noise, so the caller's id is always known). Names starting with `_` are Warren's built-ins.
 *
 * @example
 * ```ts
 * node.rpc.register('backup.status', async (params, { caller }) => ({ lastRun: Date.now(), askedBy: caller }))
 * ```
 */
import type { Connection } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'

/** `*` (every node), or node ids in base58. */
export type RpcAllow = '*' | readonly string[]

export interface RpcCallContext {
  /** The caller's node id (base58), from the Noise handshake of its connection. */
  caller: string
  connection: Connection
  /** Aborted when the call times out or the caller goes away. */
  signal: AbortSignal
}

export type RpcHandler = (params: unknown, ctx: RpcCallContext) => unknown

export interface RegisterOptions {
  /** Who may call it; absent: the node's `rpc.allow` (`rpc.public` still opens it to everyone). */
  allow?: RpcAllow
}

export interface RpcAccess {
  /** Node ids allowed by `rpc.allow`; undefined means everyone. */
  allowed(): ReadonlySet<string> | undefined
  /** Methods every node may call (`rpc.public`). */
  public(): ReadonlySet<string>
}

interface Entry {
  handler: RpcHandler
  allow?: RpcAllow
}

export type Lookup = { ok: true; handler: RpcHandler } | { ok: false; reason: 'unknown' | 'refused' }

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/

export class RpcMethods {
  readonly #methods = new Map<string, Entry>()
  readonly #access: RpcAccess

  constructor(access: RpcAccess) {
    this.#access = access
  }

  /**
   * Adds a method. Throws ERR_RPC_NAME for a name that is malformed, starts with `_` (reserved for Warren's
   * built-ins) or is taken.
   */
  register(name: string, handler: RpcHandler, opts: RegisterOptions = {}): void {
    if (name.startsWith('_')) {
      throw new WarrenError('ERR_RPC_NAME', `method names starting with "_" are Warren's own ("${name}")`, {
        hint: 'Pick a name without the leading underscore, for example "backup.status".',
      })
    }
    this.#add(name, handler, opts)
  }

  /** Adds one of Warren's built-in methods (names starting with `_`). */
  registerBuiltin(name: `_${string}`, handler: RpcHandler, opts: RegisterOptions = {}): void {
    this.#add(name, handler, opts)
  }

  #add(name: string, handler: RpcHandler, opts: RegisterOptions): void {
    if (!NAME.test(name)) {
      throw new WarrenError('ERR_RPC_NAME', `"${name.slice(0, 140)}" is not a method name`, {
        hint: 'Use 1-128 letters, digits, "_", "." and "-", starting with a letter.',
      })
    }
    if (this.#methods.has(name)) {
      throw new WarrenError('ERR_RPC_NAME', `method "${name}" is already registered`, {
        hint: 'Unregister it first, or pick another name.',
      })
    }
    const allow = opts.allow === undefined || opts.allow === '*' ? opts.allow : [...opts.allow]
    this.#methods.set(name, allow === undefined ? { handler } : { handler, allow })
  }

  /** Removes a method; whether it was there. */
  unregister(name: string): boolean {
    return this.#methods.delete(name)
  }

  /** Whether `caller` may call `name` (false for a method that does not exist). */
  mayCall(name: string, caller: string): boolean {
    const entry = this.#methods.get(name)
    if (entry === undefined) return false
    if (entry.allow !== undefined) return entry.allow === '*' || entry.allow.includes(caller)
    if (this.#access.public().has(name)) return true
    const allowed = this.#access.allowed()
    return allowed === undefined || allowed.has(caller)
  }

  /** The handler for `name` if `caller` may call it; a caller who may not is told "refused", never the handler. */
  lookup(name: string, caller: string): Lookup {
    const entry = this.#methods.get(name)
    if (entry === undefined) return { ok: false, reason: 'unknown' }
    return this.mayCall(name, caller) ? { ok: true, handler: entry.handler } : { ok: false, reason: 'refused' }
  }

  /** The methods `caller` may call, sorted. */
  namesFor(caller: string): string[] {
    return [...this.#methods.keys()].filter((n) => this.mayCall(n, caller)).sort()
  }
}
