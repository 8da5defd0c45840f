/**
 * Invites (`warren invite <service>`): one-time, expiring codes that admit the node redeeming them to one service.
 *
 * A code is 32 random bytes in base64url (43 characters). The node keeps only its SHA-256, with the service, the expiry
 * and, once redeemed, who redeemed it, in a JSON file of the Warren home (mode 0600). Another node redeems a code with
 * the RPC method `_invite.redeem` (`{ service, code }`), which any node may call: the code is the authorisation.
 * A redemption is checked against every stored hash with a constant-time compare, works once and only before the
 * expiry, and admits the caller's node id as Noise authenticated it on the connection, never an id from the params.
 * The same node redeeming its own code again is told it is already admitted. Failed redemptions are rate-limited per
 * calling node and for all nodes together.
 *
 * @example
 * ```ts
 * const invites = await InviteStore.open(join(home.dir, 'invites.json'), { admit: (service, id) => allow(service, id) })
 * registerInviteMethod(node.rpc, invites)
 * const { code, expiresAt } = await invites.create('web', 15 * 60_000)
 * ```
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmod, rename, writeFile } from 'node:fs/promises'
import { readJsonFile } from '../config/json-file.ts'
import { type ErrorCode, WarrenError } from '../errors.ts'
import type { RpcMethods } from '../rpc/methods.ts'

/** The RPC method a node calls to redeem an invite. */
export const INVITE_METHOD = '_invite.redeem'
export const INVITE_TTL_DEFAULT_MS = 15 * 60_000
export const INVITE_TTL_MIN_MS = 1_000
export const INVITE_TTL_MAX_MS = 30 * 24 * 3_600_000
/** Failed redemptions one node may make within {@link FAIL_WINDOW_MS} before it is refused for the rest of it. */
export const MAX_FAILS_PER_PEER = 5
/** Failed redemptions of all nodes together within {@link GLOBAL_WINDOW_MS}. */
export const MAX_FAILS_GLOBAL = 60
export const FAIL_WINDOW_MS = 10 * 60_000
export const GLOBAL_WINDOW_MS = 60_000
/** Invites kept at most; the expired and redeemed ones go first. */
const MAX_INVITES = 10_000
/** An expired invite is kept this long, so that its code is still reported as expired rather than invalid. */
const KEEP_EXPIRED_MS = 7 * 24 * 3_600_000
/** Calling nodes whose failures are remembered at once. */
const MAX_TRACKED_PEERS = 10_000
const CODE = /^[A-Za-z0-9_-]{43}$/

/** A new invite, as `warren invite` shows it. */
export interface InviteCreated {
  /** A handle for `warren invite --revoke`: the first 12 hex digits of the code's SHA-256 (no help in guessing it). */
  inviteId: string
  service: string
  /** The secret: shown once, never stored. */
  code: string
  /** ms since the epoch. */
  expiresAt: number
  ttlMs: number
}

/** What `_invite.redeem` answers. */
export interface InviteRedeemed {
  service: string
  /** The node admitted: the caller (base58). */
  node: string
  /** True when this node had redeemed the code before (a reload of the invite link). */
  already: boolean
}

/** An invite as `warren invite --list` shows it; never its code. */
export interface InviteSummary {
  inviteId: string
  service: string
  /** ms since the epoch. */
  createdAt: number
  expiresAt: number
  state: 'open' | 'redeemed' | 'expired'
  /** The node that redeemed it. */
  usedBy?: string
  usedAt?: number
}

export interface InviteRedeemParams {
  service: string
  code: string
}

interface StoredInvite {
  /** SHA-256 of the code, hex. */
  hash: string
  service: string
  createdAt: number
  expiresAt: number
  usedBy?: string
  usedAt?: number
}

export interface InviteStoreOptions {
  /** Adds `node` (base58) to the allow list of `service`, persisted and applied. */
  admit(service: string, node: string): Promise<void>
  /** Whether `service` exists now (checked when an invite is made). */
  hasService?(service: string): boolean
  now?(): number
}

const hashOf = (code: string): Buffer => createHash('sha256').update(code, 'utf8').digest()
const idOf = (i: StoredInvite): string => i.hash.slice(0, 12)

/** Counts failed redemptions per node and for everyone; refuses further codes while a count is over its limit. */
export class FailureLimiter {
  readonly #peers = new Map<string, number[]>()
  #global: number[] = []
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Throws ERR_INVITE_RATE_LIMITED when `peer` (or everyone together) failed too often lately. */
  check(peer: string): void {
    const now = this.#now()
    const mine = (this.#peers.get(peer) ?? []).filter((t) => t > now - FAIL_WINDOW_MS)
    this.#global = this.#global.filter((t) => t > now - GLOBAL_WINDOW_MS)
    if (mine.length >= MAX_FAILS_PER_PEER) {
      throw limited(Math.ceil((mine[0]! + FAIL_WINDOW_MS - now) / 1000), `${MAX_FAILS_PER_PEER} failed invite codes`)
    }
    if (this.#global.length >= MAX_FAILS_GLOBAL) {
      throw limited(Math.ceil((this.#global[0]! + GLOBAL_WINDOW_MS - now) / 1000), 'too many failed invite codes')
    }
  }

  fail(peer: string): void {
    const now = this.#now()
    const mine = (this.#peers.get(peer) ?? []).filter((t) => t > now - FAIL_WINDOW_MS)
    mine.push(now)
    this.#peers.delete(peer) // re-inserted last: the map's first key is the peer failing least recently
    this.#peers.set(peer, mine)
    if (this.#peers.size > MAX_TRACKED_PEERS) this.#peers.delete(this.#peers.keys().next().value!)
    this.#global.push(now)
  }
}

function limited(retrySec: number, what: string): WarrenError {
  return new WarrenError('ERR_INVITE_RATE_LIMITED', `${what} lately: try again in ${Math.max(1, retrySec)} s`, {
    hint: 'Wait, then use the code copied whole from a fresh invite (`warren invite <service>` on the node).',
    details: { retryAfterSec: Math.max(1, retrySec) },
  })
}

function refused(code: ErrorCode, message: string, hint: string, service: string): WarrenError {
  return new WarrenError(code, message, { hint, details: { service } })
}

export class InviteStore {
  readonly #path: string
  readonly #opts: InviteStoreOptions
  readonly #now: () => number
  readonly limiter: FailureLimiter
  #invites: StoredInvite[]
  /** Redemptions and new invites run one at a time: a code is never redeemed twice. */
  #queue: Promise<unknown> = Promise.resolve()

  private constructor(path: string, invites: StoredInvite[], opts: InviteStoreOptions) {
    this.#path = path
    this.#invites = invites
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.limiter = new FailureLimiter(this.#now)
  }

  /** Reads the invites file (none yet: empty); ERR_CONFIG_PARSE when it is not JSON. */
  static async open(path: string, opts: InviteStoreOptions): Promise<InviteStore> {
    const json = (await readJsonFile(path, `Delete ${path}: every invite in it stops working.`)) as
      | { invites?: unknown }
      | undefined
    const list = Array.isArray(json?.invites) ? (json.invites as StoredInvite[]) : []
    const valid = list.filter(
      (i) =>
        typeof i?.hash === 'string' &&
        /^[0-9a-f]{64}$/.test(i.hash) &&
        typeof i.service === 'string' &&
        typeof i.expiresAt === 'number',
    )
    return new InviteStore(path, valid, opts)
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }

  /** Makes an invite to `service` valid for `ttlMs`; ERR_SERVICE_NOT_FOUND for a service the node does not offer. */
  async create(service: string, ttlMs = INVITE_TTL_DEFAULT_MS): Promise<InviteCreated> {
    if (!Number.isInteger(ttlMs) || ttlMs < INVITE_TTL_MIN_MS || ttlMs > INVITE_TTL_MAX_MS) {
      throw new WarrenError('ERR_USAGE', `an invite's time to live must be 1 s to 30 days, not ${ttlMs} ms`, {
        hint: 'For example --ttl 15m, --ttl 2h or --ttl 7d.',
      })
    }
    if (this.#opts.hasService?.(service) === false) {
      throw new WarrenError('ERR_SERVICE_NOT_FOUND', `no service "${service}" is exposed`, {
        hint: 'Invite to a service this node offers: `warren status` lists them.',
        details: { service },
      })
    }
    return this.#serial(async () => {
      const code = randomBytes(32).toString('base64url')
      const now = this.#now()
      this.#prune(now)
      if (this.#invites.length >= MAX_INVITES) {
        throw new WarrenError('ERR_USAGE', `${MAX_INVITES} invites are open already`, {
          hint: 'Wait for some to expire or be redeemed, or admit nodes by id with `warren allow`.',
        })
      }
      this.#invites.push({ hash: hashOf(code).toString('hex'), service, createdAt: now, expiresAt: now + ttlMs })
      await this.#save()
      return { inviteId: idOf(this.#invites.at(-1)!), service, code, expiresAt: now + ttlMs, ttlMs }
    })
  }

  /** Every invite kept (open, redeemed, and expired within the last 7 days), oldest first. */
  list(): InviteSummary[] {
    const now = this.#now()
    return this.#invites.map((i) => {
      const state = i.usedBy !== undefined ? 'redeemed' : i.expiresAt <= now ? 'expired' : 'open'
      const out: InviteSummary = {
        inviteId: idOf(i),
        service: i.service,
        createdAt: i.createdAt,
        expiresAt: i.expiresAt,
        state,
      }
      if (i.usedBy !== undefined) out.usedBy = i.usedBy
      if (i.usedAt !== undefined) out.usedAt = i.usedAt
      return out
    })
  }

  /** Forgets an invite, so that its code no longer works (ERR_INVITE_INVALID); ERR_INVITE_NOT_FOUND for an unknown id. */
  revoke(inviteId: string): Promise<InviteSummary> {
    return this.#serial(async () => {
      const found = this.list().find((i) => i.inviteId === inviteId.toLowerCase())
      if (found === undefined) {
        throw new WarrenError('ERR_INVITE_NOT_FOUND', `no invite "${inviteId.slice(0, 40)}" is kept on this node`, {
          hint: '`warren invite --list` shows the invites and their ids.',
          details: { inviteId: inviteId.slice(0, 40) },
        })
      }
      this.#invites = this.#invites.filter((i) => idOf(i) !== found.inviteId)
      await this.#save()
      return found
    })
  }

  /** Open (unexpired, unredeemed) invites per service, for status output. */
  open(): Record<string, number> {
    const now = this.#now()
    const out: Record<string, number> = {}
    for (const i of this.#invites) {
      if (i.usedBy === undefined && i.expiresAt > now) out[i.service] = (out[i.service] ?? 0) + 1
    }
    return out
  }

  /** Redeems `code` for `service` on behalf of `caller` (base58, from the connection); see the module comment. */
  redeem(service: string, code: string, caller: string): Promise<InviteRedeemed> {
    return this.#serial(async () => {
      this.limiter.check(caller)
      const failed = (e: WarrenError): never => {
        this.limiter.fail(caller)
        throw e
      }
      const found = this.#find(code)
      if (found === undefined || found.service !== service) {
        return failed(
          refused(
            'ERR_INVITE_INVALID',
            `this invite code is not valid for service "${service}"`,
            'Copy the whole link or code again, or ask the owner for a new invite (`warren invite <service>`).',
            service,
          ),
        )
      }
      if (found.usedBy !== undefined) {
        if (found.usedBy === caller) return { service, node: caller, already: true }
        return failed(
          refused(
            'ERR_INVITE_USED',
            `this invite to "${service}" was already redeemed by another node`,
            'Each invite admits one node once: ask the owner for an invite of your own.',
            service,
          ),
        )
      }
      const now = this.#now()
      if (now >= found.expiresAt) {
        return failed(
          refused(
            'ERR_INVITE_EXPIRED',
            `this invite to "${service}" expired ${new Date(found.expiresAt).toISOString()}`,
            'Ask the owner for a new invite (`warren invite <service>`).',
            service,
          ),
        )
      }
      // marked used first: a failure of the admission below gives it back, a crash after it never lets it work twice
      found.usedBy = caller
      found.usedAt = now
      await this.#save()
      try {
        await this.#opts.admit(service, caller)
      } catch (err) {
        delete found.usedBy
        delete found.usedAt
        await this.#save()
        throw err
      }
      return { service, node: caller, already: false }
    })
  }

  /** The stored invite whose hash is the code's, comparing with every one in constant time. */
  #find(code: string): StoredInvite | undefined {
    if (!CODE.test(code)) return undefined // the shape of a code is no secret
    const hash = hashOf(code)
    let found: StoredInvite | undefined
    for (const i of this.#invites) if (timingSafeEqual(Buffer.from(i.hash, 'hex'), hash)) found = i
    return found
  }

  #prune(now: number): void {
    this.#invites = this.#invites.filter((i) => i.expiresAt > now - KEEP_EXPIRED_MS)
    if (this.#invites.length >= MAX_INVITES) {
      // the expired and redeemed first, oldest first
      const done = (i: StoredInvite): number => (i.usedBy !== undefined || i.expiresAt <= now ? 0 : 1)
      this.#invites.sort((a, b) => done(a) - done(b) || a.createdAt - b.createdAt)
      this.#invites.splice(0, this.#invites.length - MAX_INVITES + 1)
    }
  }

  /** Writes the file whole (a temp file renamed over it), mode 0600. */
  async #save(): Promise<void> {
    const tmp = `${this.#path}.tmp`
    await writeFile(tmp, `${JSON.stringify({ version: 1, invites: this.#invites }, null, 2)}\n`, { mode: 0o600 })
    await chmod(tmp, 0o600)
    await rename(tmp, this.#path)
  }
}

function paramsOf(params: unknown): InviteRedeemParams {
  const p = params as Partial<InviteRedeemParams> | undefined
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.service !== 'string' ||
    typeof p.code !== 'string' ||
    p.code.length > 200
  ) {
    throw new WarrenError('ERR_RPC_BAD_PARAMS', `${INVITE_METHOD} takes { service, code } (strings)`)
  }
  return { service: p.service, code: p.code }
}

/** Registers `_invite.redeem` on a node's RPC methods; every node may call it (the code is what admits). */
export function registerInviteMethod(methods: RpcMethods, store: InviteStore): void {
  methods.registerBuiltin(
    INVITE_METHOD,
    (params, { caller }) => {
      const p = paramsOf(params)
      return store.redeem(p.service, p.code, caller)
    },
    { allow: '*' },
  )
}
