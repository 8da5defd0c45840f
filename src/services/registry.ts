/**
 * The services a node offers and who may use them.
 *
 * Access rules: a service is reachable only by the peers in its `allow` list (node ids or `peers` aliases);
 * `"*"` makes it public; with no `allow`, every node named in `peers` may use it. Everyone else is refused
 * before a byte reaches the target.
 */
import type { PeerId } from '@libp2p/interface'
import { validateConfig } from '../config/load.ts'
import type { ServiceConfig } from '../config/schema.ts'
import { parseTarget, type TcpTarget } from '../config/target.ts'
import { WarrenError } from '../errors.ts'
import { parseNodeId } from '../identity/node-id.ts'
import { decodeTicket, looksLikeTicket } from '../identity/ticket.ts'

export interface ServiceInfo {
  name: string
  target: string
  /** Allow list as configured; undefined means "every node in peers". */
  allow?: string[]
  kubo: boolean
  /** Where it came from: config.json or `warren expose` at runtime. */
  source: 'config' | 'runtime'
}

export interface ServiceEntry extends ServiceInfo {
  tcp: TcpTarget
  /** Node ids (base58) allowed; undefined with `public` false means "peers only". */
  allowed: Set<string> | undefined
  public: boolean
  /** `http`: served through the host-side reverse proxy that adds X-Warren-Peer. */
  type: 'tcp' | 'http'
  /** Shown to callers by `warren ls` (config `description`). */
  description?: string
}

export type AccessDecision =
  | { ok: true; entry: ServiceEntry }
  | { ok: false; reason: 'unknown' }
  | { ok: false; reason: 'denied'; entry: ServiceEntry }

/** Node id (base58) of a `peers` value: a node id in either form or a ticket. */
export function peerRefId(ref: string): string {
  return (looksLikeTicket(ref) ? decodeTicket(ref).id : parseNodeId(ref)).toString()
}

/**
 * The node ids (base58) an allow list names: each entry a node id in either form or an alias in `peers`;
 * ERR_UNKNOWN_PEER naming `what` for any other entry. `*` entries are skipped (the caller decides what they mean).
 */
export function allowedIds(allow: readonly string[], peers: Record<string, string>, what: string): Set<string> {
  return new Set(
    allow
      .filter((entry) => entry !== '*')
      .map((entry) => {
        const ref = peers[entry]
        if (ref !== undefined) return peerRefId(ref)
        try {
          return parseNodeId(entry).toString()
        } catch {
          throw new WarrenError(
            'ERR_UNKNOWN_PEER',
            `allow entry "${entry}" of ${what} is not a node id or an alias in peers`,
            {
              hint: `Add "peers": { "${entry}": "<node id>" } to config.json, or allow the node id itself.`,
            },
          )
        }
      }),
  )
}

/** The node ids (base58) of every node in `peers` (unreadable references name nobody). */
export function peerIds(peers: Record<string, string>): Set<string> {
  const ids = new Set<string>()
  for (const ref of Object.values(peers)) {
    try {
      ids.add(peerRefId(ref))
    } catch {
      // validated with the config; an unreadable ref names nobody
    }
  }
  return ids
}

export class ServiceRegistry {
  readonly #services = new Map<string, ServiceEntry>()
  #peers: Record<string, string>
  /** Node ids in `peers` or in an allow list; rebuilt after a change. */
  #named: Set<string> | undefined
  readonly #listeners = new Set<() => void>()

  constructor(peers: Record<string, string> = {}) {
    this.#peers = peers
  }

  /**
   * Calls `fn` after every change of services or aliases (add, replace, remove, new `peers`), so that the host can
   * revoke streams the new rules no longer admit. Returns a function that unsubscribes.
   */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  #changed(): void {
    this.#named = undefined
    for (const fn of this.#listeners) fn()
  }

  /** Replaces the alias table (config reload). Allow lists are resolved again. */
  setPeers(peers: Record<string, string>): void {
    this.#peers = peers
    for (const e of this.#services.values()) this.#services.set(e.name, this.#build(e.name, e, e.source))
    this.#changed()
  }

  /** Whether this node names `peer`: an alias in `peers`, or a node id in some service's allow list. */
  isNamed(peer: PeerId | string): boolean {
    if (this.#named === undefined) {
      const named = peerIds(this.#peers)
      for (const e of this.#services.values()) for (const id of e.allowed ?? []) named.add(id)
      this.#named = named
    }
    return this.#named.has(peer.toString())
  }

  /**
   * Whom this node admits to some service: `any` when a service is public (`allow: ["*"]`), and the node ids that
   * `peers` and the allow lists name, sorted. What the node declares to its relays (src/relay/client/admits.ts).
   */
  admitted(): { any: boolean; ids: string[] } {
    this.isNamed('')
    const any = [...this.#services.values()].some((e) => e.public)
    return { any, ids: [...(this.#named ?? [])].sort() }
  }

  #build(name: string, svc: ServiceConfig, source: ServiceInfo['source']): ServiceEntry {
    const allow = svc.allow
    const isPublic = allow?.includes('*') ?? false
    let allowed: Set<string> | undefined
    if (allow !== undefined && !isPublic) allowed = allowedIds(allow, this.#peers, `service "${name}"`)
    const info: ServiceEntry = {
      name,
      target: svc.target,
      kubo: svc.kubo,
      source,
      tcp: parseTarget(svc.target),
      allowed,
      public: isPublic,
      type: svc.type ?? 'tcp',
    }
    if (svc.description !== undefined) info.description = svc.description
    if (allow !== undefined) info.allow = [...allow]
    return info
  }

  /**
   * Adds a service. `svc` may be the short form (a target string) or the long form; it is validated with the
   * config schema. Throws ERR_SERVICE_EXISTS unless `replace`.
   */
  add(
    name: string,
    svc: ServiceConfig | string | Record<string, unknown>,
    source: ServiceInfo['source'],
    replace = false,
  ): ServiceEntry {
    if (this.#services.has(name) && !replace) {
      throw new WarrenError('ERR_SERVICE_EXISTS', `service "${name}" is already exposed`, {
        hint: `Remove it first with \`warren unexpose ${name}\`, or pick another name.`,
      })
    }
    // validate name + body through the one schema, so runtime services obey the same rules as config.json
    const parsed = validateConfig({ peers: this.#peers, services: { [name]: svc } }, `service "${name}"`).services[
      name
    ]!
    const entry = this.#build(name, parsed, source)
    this.#services.set(name, entry)
    this.#changed()
    return entry
  }

  remove(name: string): ServiceEntry {
    const entry = this.#services.get(name)
    if (entry === undefined) {
      throw new WarrenError('ERR_SERVICE_NOT_FOUND', `no service "${name}" is exposed`, {
        hint: 'See the exposed services with `warren status`.',
      })
    }
    this.#services.delete(name)
    this.#changed()
    return entry
  }

  get(name: string): ServiceEntry | undefined {
    return this.#services.get(name)
  }

  list(): ServiceInfo[] {
    return [...this.#services.values()].map(({ name, target, allow, kubo, source }) =>
      allow === undefined ? { name, target, kubo, source } : { name, target, allow, kubo, source },
    )
  }

  /** The services `peer` may use, as `warren ls` shows them: name, type and description, never the target. */
  usableBy(peer: PeerId): { name: string; type: 'tcp' | 'http'; description?: string }[] {
    const out: { name: string; type: 'tcp' | 'http'; description?: string }[] = []
    for (const e of this.#services.values()) {
      if (!this.check(e.name, peer).ok) continue
      out.push(
        e.description === undefined
          ? { name: e.name, type: e.type }
          : { name: e.name, type: e.type, description: e.description },
      )
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Whether `peer` may use `name`. */
  check(name: string, peer: PeerId): AccessDecision {
    const entry = this.#services.get(name)
    if (entry === undefined) return { ok: false, reason: 'unknown' }
    if (entry.public) return { ok: true, entry }
    const id = peer.toString()
    const allowed = entry.allowed ?? new Set(Object.values(this.#peers).map(peerRefId))
    return allowed.has(id) ? { ok: true, entry } : { ok: false, reason: 'denied', entry }
  }
}
