/**
 * The relay's policy, as plain decisions: who is allowed, which limits a reservation carries, and why a reservation
 * or a relayed connection (a circuit) is refused. The libp2p glue lives in {@link ./relay-hooks.ts}.
 *
 * Rules (docs/relay.md explains them for operators):
 * - Nodes on the allow list, and nodes that presented one of the relay's `tokens` ({@link RelayPolicy.admitByToken}),
 *   are *allowed*: they get reservations without limits; circuits to them are unlimited.
 * - Other nodes get reservations bounded in data and duration, or none on a private relay; at most `maxReservations`
 *   of them are held at once, and at most `maxReservationsPerIp` from one IP address (one /64 for IPv6). Allowed
 *   nodes never count against these caps, so strangers cannot use up the reservations of allowed nodes.
 * - A circuit to a non-allowed node takes the limits of that node's reservation. A circuit to an allowed node (a
 *   *member*) is unlimited when it comes from an allowed node, from a node the member declared it admits
 *   (`/warren/relay/admits/1.0.0`, {@link RelayPolicy.declare}: the nodes its services allow, e.g. browsers), or when
 *   the member declared nothing (a node that does not speak the protocol); from anyone else it takes the limits for
 *   strangers. Only members' declarations count: a stranger cannot lift the limits of circuits to itself.
 * - A circuit asked for by an allowed node is never refused; others are refused at `maxCircuits` circuits in total or
 *   `maxCircuitsPerNode` for a non-allowed end.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { AdmitsAnswer, AdmitsDeclaration } from '../admits.ts'
import type { CircuitLimit } from '../info.ts'
import type { RelayConfig, RelayLimits } from './config.ts'

/** Nodes admitted by token remembered at most (the oldest admission is forgotten first; the node presents it again). */
const MAX_TOKEN_ADMISSIONS = 65_536

/** What {@link RelayPolicy.update} takes: the reloadable part of the relay's settings. */
export type PolicySettings = Pick<RelayConfig, 'allow' | 'private' | 'limits'> & { tokens?: readonly string[] }

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest()

export interface ReservationLoad {
  /** Reservations held now by non-allowed nodes, not counting this node's own (a renewal takes no new slot). */
  boundedHeld: number
  /**
   * Of those, the ones reserved from the same address as this node's request ({@link ipGroup}); absent when the
   * address is not capped (unknown, or a relay behind a proxy seeing the proxy).
   */
  sameIp?: { ip: string; held: number }
}

export interface CircuitLoad {
  /** Circuits open or being opened now. */
  total: number
  /** Circuits open or being opened now with this node at either end. */
  perNode(peer: string): number
}

export type { CircuitLimit }

export class RelayPolicy {
  private: boolean
  limits: RelayLimits
  #allow: ReadonlySet<string>
  /** SHA-256 of each configured token (compared in constant time). */
  #tokens: Buffer[] = []
  /** Nodes admitted by a token → the digest of the token they presented. */
  readonly #admitted = new Map<string, Buffer>()
  /** Members → the nodes they declared they admit (`any`: all of them). */
  readonly #admits = new Map<string, { any: boolean; ids: ReadonlySet<string> }>()
  #epoch = 0

  constructor(config: PolicySettings) {
    this.private = config.private
    this.limits = config.limits
    this.#allow = new Set(config.allow)
    this.#tokens = (config.tokens ?? []).map(digest)
  }

  /**
   * Takes new settings (a reload): the allow list, `private`, the limits and the tokens. Nodes admitted by a token that
   * is no longer configured lose their admission; the others keep it.
   */
  update(config: PolicySettings): void {
    this.#epoch++
    this.private = config.private
    this.limits = config.limits
    this.#allow = new Set(config.allow)
    this.#tokens = (config.tokens ?? []).map(digest)
    for (const [peer, d] of this.#admitted) if (!this.#knows(d)) this.#admitted.delete(peer)
    for (const member of this.#admits.keys()) if (!this.isAllowed(member)) this.#admits.delete(member)
  }

  /**
   * Takes `member`'s declaration of the nodes it admits, replacing its earlier one; refused (and nothing kept) when
   * `member` is not allowed on this relay.
   */
  declare(member: string, declaration: AdmitsDeclaration): AdmitsAnswer {
    const reason = this.declarationRefusal(member)
    if (reason !== undefined) return { accepted: false, reason }
    const ids = new Set(declaration.ids)
    this.#admits.set(member, { any: declaration.any, ids })
    return { accepted: true, ids: ids.size }
  }

  /**
   * Why a declaration of `node` would not count (it is not allowed here; a declaration it made while it was is
   * forgotten), or undefined when it would.
   */
  declarationRefusal(node: string): string | undefined {
    if (this.isAllowed(node)) return undefined
    this.#admits.delete(node)
    return `node ${node} is not on this relay's allow list, so circuits to it keep the limits for strangers whatever it admits`
  }

  /** Forgets `member`'s declaration (its last connection to the relay closed). */
  forget(member: string): void {
    this.#admits.delete(member)
  }

  /** What `member` declared: whether it admits everyone, and how many nodes it names; undefined when nothing. */
  declarationOf(member: string): { any: boolean; ids: number } | undefined {
    const d = this.#admits.get(member)
    return d === undefined ? undefined : { any: d.any, ids: d.ids.size }
  }

  /** Whether `dst` (a member) admits `src` by its declaration, or declared nothing. */
  #admitsTo(src: string, dst: string): boolean {
    const d = this.#admits.get(dst)
    return d === undefined || d.any || d.ids.has(src)
  }

  /** The limits of a circuit from `src` to `dst` (which holds a reservation); undefined means unlimited. */
  circuitLimit(src: string, dst: string): CircuitLimit | undefined {
    if (!this.isAllowed(dst)) return this.limitFor(dst)
    if (this.isAllowed(src) || this.#admitsTo(src, dst)) return undefined
    return { dataBytes: this.limits.dataBytes, durationSec: this.limits.durationSec }
  }

  #knows(d: Buffer): boolean {
    let found = false
    for (const t of this.#tokens) if (timingSafeEqual(t, d)) found = true
    return found
  }

  /** Whether the relay has any token configured. */
  get tokenCount(): number {
    return this.#tokens.length
  }

  /**
   * Admits `peer` when `token` is one of the relay's tokens; returns whether it did. A wrong token admits nothing
   * (and takes back nothing the node already had).
   */
  admitByToken(peer: string, token: string): boolean {
    const d = digest(token)
    if (!this.#knows(d)) return false
    this.#admitted.delete(peer)
    this.#admitted.set(peer, d)
    if (this.#admitted.size > MAX_TOKEN_ADMISSIONS) {
      const oldest = this.#admitted.keys().next().value
      if (oldest !== undefined) this.#admitted.delete(oldest)
      this.#epoch++
    }
    return true
  }

  /**
   * Moves on whenever {@link isAllowed} may have changed for nodes the caller did not name: a reload, or a token
   * admission that made the policy forget an older one. (A node admitted by {@link admitByToken} is the caller's.)
   */
  get epoch(): number {
    return this.#epoch
  }

  /** On the allow list, or admitted by a token. */
  isAllowed(peer: string): boolean {
    return this.#allow.has(peer) || this.#admitted.has(peer)
  }

  /** How `peer` is allowed: by the allow list, by a token, or not at all. */
  admission(peer: string): 'list' | 'token' | null {
    if (this.#allow.has(peer)) return 'list'
    return this.#admitted.has(peer) ? 'token' : null
  }

  get allowList(): string[] {
    return [...this.#allow]
  }

  /** Nodes admitted by a token now. */
  get tokenNodes(): string[] {
    return [...this.#admitted.keys()]
  }

  /** The limits a reservation of `peer` carries; undefined means unlimited. */
  limitFor(peer: string): CircuitLimit | undefined {
    if (this.isAllowed(peer)) return undefined
    return { dataBytes: this.limits.dataBytes, durationSec: this.limits.durationSec }
  }

  /** Why a reservation is refused, or undefined when it is granted. */
  reservationRefusal(peer: string, load: ReservationLoad): string | undefined {
    if (this.isAllowed(peer)) return undefined
    if (this.private) return `the relay is private and node ${peer} is not on its allow list`
    if (load.sameIp !== undefined && load.sameIp.held >= this.limits.maxReservationsPerIp) {
      return `the relay already holds its maximum of ${this.limits.maxReservationsPerIp} reservations for nodes at ${load.sameIp.ip} not on its allow list`
    }
    if (load.boundedHeld >= this.limits.maxReservations) {
      return `the relay already holds its maximum of ${this.limits.maxReservations} reservations for nodes not on its allow list`
    }
    return undefined
  }

  /** Why a circuit from `src` to `dst` is refused, or undefined when it may open. */
  circuitRefusal(src: string, dst: string, load: CircuitLoad): string | undefined {
    if (this.isAllowed(src)) return undefined
    if (this.private && !this.isAllowed(dst)) {
      return `the relay is private and neither ${src} nor ${dst} is on its allow list`
    }
    if (load.total >= this.limits.maxCircuits) {
      return `the relay already carries its maximum of ${this.limits.maxCircuits} relayed connections`
    }
    for (const peer of [src, dst]) {
      if (!this.isAllowed(peer) && load.perNode(peer) >= this.limits.maxCircuitsPerNode) {
        return `node ${peer} already has its maximum of ${this.limits.maxCircuitsPerNode} relayed connections through this relay`
      }
    }
    return undefined
  }
}

/**
 * The address a reservation counts against for `maxReservationsPerIp`: the IPv4 address itself (also when written
 * IPv4-mapped, `::ffff:a.b.c.d`), or the /64 prefix of an IPv6 address, since one host commonly holds a whole /64.
 */
export function ipGroup(host: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)
  if (mapped !== null) return mapped[1]!
  if (!host.includes(':')) return host
  const [head = '', tail] = host.toLowerCase().split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}
