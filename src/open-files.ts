/**
 * The open-file limit of this process (`ulimit -n`, RLIMIT_NOFILE) and a budget of descriptors for local
 * connections under it.
 *
 * Every local connection a node holds takes a descriptor: a client of a forward, of the access port or of the
 * transparent listener, and a service's target connection on the serving end. At the limit the kernel refuses the
 * next `accept()` or `socket()` with EMFILE, wherever it comes from: libuv then accepts and closes new clients
 * without a word, and a part that opens a socket for its own work (a peer connection, the list of network
 * interfaces, a DNS lookup) fails. So a new local connection is admitted only while {@link DescriptorBudget.reserve}
 * descriptors stay free for the node itself, besides those its peer connections hold; past that it is refused at
 * once, and the refusal says why.
 *
 * @example
 * ```ts
 * const fds = processDescriptors()
 * const release = fds.take()
 * if (release === undefined) return refuse(socket, fds.describe())
 * socket.once('close', release)
 * ```
 */
import { readFileSync } from 'node:fs'

/** Descriptors kept free for the node itself: listeners, the API, discovery, log files, DNS lookups, workers. */
export const DESCRIPTOR_RESERVE = 128

/** How often, at most, the limit is read again while the budget is near it (a `prlimit` on the running process). */
const REREAD_MS = 1_000

/** The soft limit on open files of this process (/proc/self/limits), or undefined where it cannot be read. */
export function openFilesLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'))
    if (m === null) return undefined
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])
  } catch {
    return undefined
  }
}

/** Descriptors some part holds that come and go (a node's peer connections), and the most it may hold. */
interface OtherHolder {
  count(): number
  max: number
}

export interface DescriptorBudgetOptions {
  /** The open-file limit; undefined: unknown, every connection is admitted. */
  limit: number | undefined
  /** Descriptors kept free for the process itself (default {@link DESCRIPTOR_RESERVE}). */
  reserve?: number
  /** Reads the limit again (near the limit, at most once a second); default: none. */
  reread?: () => number | undefined
}

/** What `warren status --json` and the metrics show of a process's budget. */
export interface OpenFilesStatus {
  /** The open-file limit (`ulimit -n`); null when it cannot be read. */
  limit: number | null
  /** Local connections holding a descriptor now. */
  localConnections: number
  /** Local connections and service streams refused at the limit since start. */
  refused: number
}

export class DescriptorBudget {
  #limit: number
  readonly reserve: number
  readonly #reread: (() => number | undefined) | undefined
  readonly #others = new Set<OtherHolder>()
  #othersMax = 0
  #held = 0
  #refused = 0
  #readAt = Date.now()

  constructor(opts: DescriptorBudgetOptions) {
    this.#limit = opts.limit ?? Number.POSITIVE_INFINITY
    this.reserve = opts.reserve ?? DESCRIPTOR_RESERVE
    this.#reread = opts.reread
  }

  /** The open-file limit as last read (Infinity when unknown). */
  get limit(): number {
    return this.#limit
  }

  /** Local connections holding a descriptor now. */
  get held(): number {
    return this.#held
  }

  /**
   * Counts the descriptors another part holds (a node's peer connections): `count` is asked only near the limit,
   * `max` bounds it so that far from the limit nothing is asked. Returns the way to stop counting them.
   */
  countOthers(count: () => number, max: number): () => void {
    const holder: OtherHolder = { count, max }
    this.#others.add(holder)
    this.#othersMax += max
    return () => {
      if (this.#others.delete(holder)) this.#othersMax -= max
    }
  }

  /** One descriptor for a new local connection: the function that gives it back, or undefined at the limit. */
  take(): (() => void) | undefined {
    if (this.#held + this.reserve + this.#othersMax >= this.#limit && !this.#roomNearLimit()) {
      this.#refused++
      return undefined
    }
    this.#held++
    let given = false
    return () => {
      if (given) return
      given = true
      this.#held--
    }
  }

  /** Near the limit: the limit read again (at most once a second) and the other parts' descriptors counted. */
  #roomNearLimit(): boolean {
    const now = Date.now()
    if (this.#reread !== undefined && now - this.#readAt >= REREAD_MS) {
      this.#readAt = now
      this.#limit = this.#reread() ?? this.#limit
    }
    let others = 0
    for (const o of this.#others) others += Math.min(o.count(), o.max)
    return this.#held + this.reserve + others < this.#limit
  }

  status(): OpenFilesStatus {
    return {
      limit: Number.isFinite(this.#limit) ? this.#limit : null,
      localConnections: this.#held,
      refused: this.#refused,
    }
  }

  /** Why a connection was refused, in words a user can act on. */
  describe(): string {
    return (
      `${this.#held} local connections are open, the most this process's open-file limit allows ` +
      `(ulimit -n ${this.#limit}, less ${this.reserve} kept for the node's own use and those of its peer connections); ` +
      'raise the limit (ulimit -n, LimitNOFILE= in a systemd unit) or close connections'
    )
  }
}

/**
 * Why `wanted` local connections (the configured stream limit) cannot all be held under `limit`, or undefined when
 * they can: a start-up warning, so that the limit is met as a known ceiling rather than as refusals.
 */
export function descriptorShortfall(
  wanted: number,
  limit: number | undefined,
  what: string,
  reserve = DESCRIPTOR_RESERVE,
): string | undefined {
  if (limit === undefined || limit >= wanted + reserve) return undefined
  return (
    `${what} is ${wanted} but this process may open only ${limit} files (ulimit -n): local connections past about ` +
    `${Math.max(0, limit - reserve)} will be refused; raise the limit to at least ${wanted + reserve} ` +
    '(ulimit -n, or LimitNOFILE= in a systemd unit)'
  )
}

let shared: DescriptorBudget | undefined

/** The budget of this process, shared by every part that holds local connections. */
export function processDescriptors(): DescriptorBudget {
  shared ??= new DescriptorBudget({ limit: openFilesLimit(), reread: () => openFilesLimit() })
  return shared
}
