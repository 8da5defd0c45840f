/**
 * Who may use a service, changed at run time: `warren allow` and `warren deny` (the local API's `services.allow` and
 * `services.deny`), and invites (`invites.create`, `invites.list`, `invites.revoke`; a redeemed invite allows its
 * redeemer the same way).
 *
 * A service of config.json gets its new `allow` list written into config.json (the rest of the file as it is, the
 * whole file checked against the schema first, written atomically) and applied with the daemon's reload; a reload
 * that fails puts the old file back. A service of `warren expose` gets it in state.json and is exposed again with it.
 * Either way the running node applies it at once: streams of a node taken off the list are reset.
 *
 * A service without an `allow` list admits every node in `peers`; giving it one lists those aliases explicitly, so
 * everyone admitted before stays admitted. A service open to everyone (`"*"`) cannot deny one node.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import type { HomePaths } from '../config/home.ts'
import { readJsonFile } from '../config/json-file.ts'
import { validateConfig } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { WarrenError } from '../errors.ts'
import { parseNodeId } from '../identity/node-id.ts'
import { decodeTicket, looksLikeTicket } from '../identity/ticket.ts'
import { type InviteCreated, InviteStore, registerInviteMethod } from '../node/invites.ts'
import type { ReloadResult } from '../node/reload.ts'
import type { WarrenNode } from '../node/warren-node.ts'
import { peerRefId } from '../services/registry.ts'
import type { StateStore } from './state.ts'

/** What `warren allow` / `warren deny` changed. */
export interface AllowChange {
  service: string
  /** The node (base58). */
  node: string
  /** Whether the node may use the service now. */
  allowed: boolean
  /** False when the node was already allowed (allow) or not allowed (deny). */
  changed: boolean
  /** The service's allow list now; absent: every node in `peers`. */
  allow?: string[]
  /** Where the list is kept: config.json or state.json (`warren expose`). */
  source: 'config' | 'runtime'
}

/** A new invite with what a link needs. */
export interface InviteResult extends InviteCreated {
  /** The node's id and a ticket naming its relays, for the link. */
  id: string
  ticket: string
  /** Web app bases derived from the relays with DNS names (`https://relay.example/`). */
  webBases: string[]
}

export interface Admission {
  allow(service: string, node: string): Promise<AllowChange>
  deny(service: string, node: string): Promise<AllowChange>
  invite(service: string, ttlMs?: number): Promise<InviteResult>
  /** The invites kept (`invites.list`, `invites.revoke`). */
  readonly invites: Pick<InviteStore, 'list' | 'revoke'>
}

export interface AdmissionOptions {
  node: WarrenNode
  state: StateStore
  home: HomePaths
  /** The running config (for `peers`). */
  config(): Config
  reload(): Promise<ReloadResult>
}

/** A node reference of the command line: an alias in `peers` (kept as the alias), a node id or a ticket. */
function resolveNode(ref: string, peers: Record<string, string>): { entry: string; id: string } {
  if (Object.hasOwn(peers, ref)) return { entry: ref, id: peerRefId(peers[ref]!) }
  const id = looksLikeTicket(ref) ? decodeTicket(ref).id.toString() : parseNodeId(ref).toString()
  return { entry: id, id }
}

/** The node id an allow entry names, or undefined (`*`, or an entry that names nobody). */
function entryId(entry: string, peers: Record<string, string>): string | undefined {
  try {
    return Object.hasOwn(peers, entry) ? peerRefId(peers[entry]!) : parseNodeId(entry).toString()
  } catch {
    return undefined
  }
}

/** `https://<host>/` for each relay multiaddr with a DNS name. */
export function webBasesOf(relays: readonly string[]): string[] {
  const out = new Set<string>()
  for (const r of relays) {
    const m = /^\/dns[46]?\/([^/]+)\//.exec(r)
    if (m !== null) out.add(`https://${m[1]}/`)
  }
  return [...out]
}

/** Sets up invites (the `_invite.redeem` method, invites.json in the home) and allow-list editing for a daemon. */
export async function startAdmission(opts: AdmissionOptions): Promise<Admission> {
  const { node, state, home } = opts
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn)
    queue = run.catch(() => {})
    return run
  }

  const serviceOf = (name: string) => {
    const svc = node.services().find((s) => s.name === name)
    if (svc === undefined) {
      throw new WarrenError('ERR_SERVICE_NOT_FOUND', `no service "${name}" is exposed`, {
        hint: 'See the exposed services with `warren status`.',
        details: { service: name },
      })
    }
    return svc
  }

  /** Writes `allow` as the service's list where the service is kept, and applies it. */
  const save = async (name: string, source: 'config' | 'runtime', allow: string[]): Promise<void> => {
    if (source === 'runtime') {
      const saved = state.state.services[name]
      const current = node.registry.get(name)
      const svc = saved ?? { target: current!.target, kubo: current!.kubo }
      node.expose(name, { ...svc, allow }, { replace: true })
      await state.update((s) => {
        s.services[name] = { ...svc, allow }
      })
      return
    }
    const parsed = await readJsonFile(home.config, 'Fix the JSON syntax of config.json first.')
    const before = await readFile(home.config, 'utf8') // put back as it was if the reload fails
    const raw = (parsed ?? {}) as { services?: Record<string, unknown> }
    const entry = raw.services?.[name]
    if (entry === undefined) {
      throw new WarrenError('ERR_SERVICE_NOT_FOUND', `service "${name}" is no longer in ${home.config}`, {
        hint: 'The file changed since the daemon read it: run `warren reload`, or add the service back.',
        details: { service: name },
      })
    }
    const next = structuredClone(raw) as { services: Record<string, unknown> }
    next.services[name] = typeof entry === 'string' ? { target: entry, allow } : { ...(entry as object), allow }
    validateConfig(next, home.config) // a config the user left invalid is refused before anything is written
    const mode = (await stat(home.config)).mode & 0o777
    const write = async (body: string): Promise<void> => {
      const tmp = join(home.dir, `.config.json.${process.pid}.tmp`)
      await writeFile(tmp, body, { mode })
      await rename(tmp, home.config)
    }
    await write(`${JSON.stringify(next, null, 2)}\n`)
    try {
      await opts.reload()
    } catch (err) {
      await write(before)
      throw err
    }
  }

  const change = (name: string, ref: string, add: boolean): Promise<AllowChange> =>
    serial(async () => {
      const peers = opts.config().peers
      const { entry, id } = resolveNode(ref, peers)
      const svc = serviceOf(name)
      const entries = svc.allow
      const allowedNow = node.registry.check(name, peerIdFromString(id)).ok
      const result = (allowed: boolean, changed: boolean, allow: string[] | undefined): AllowChange => ({
        service: name,
        node: id,
        allowed,
        changed,
        ...(allow === undefined ? {} : { allow }),
        source: svc.source,
      })
      if (add) {
        if (allowedNow) return result(true, false, entries)
        const next = [...(entries ?? Object.keys(peers)), entry]
        await save(name, svc.source, next)
        await node.relayAdmits?.flush() // the relays lift their stranger limits before the caller's next circuit
        return result(true, true, next)
      }
      if (entries?.includes('*') === true) {
        throw new WarrenError(
          'ERR_USAGE',
          `service "${name}" is open to every node (allow "*"): one cannot be denied`,
          {
            hint: 'Replace "*" in its allow list with the nodes to admit, then deny works node by node.',
            details: { service: name },
          },
        )
      }
      if (!allowedNow) return result(false, false, entries)
      const next = (entries ?? Object.keys(peers)).filter((e) => entryId(e, peers) !== id)
      await save(name, svc.source, next)
      await node.relayAdmits?.flush() // the relays lift their stranger limits before the caller's next circuit
      return result(false, true, next)
    })

  const invites = await InviteStore.open(join(home.dir, 'invites.json'), {
    admit: async (service, id) => {
      await change(service, id, true)
    },
    hasService: (service) => node.registry.get(service) !== undefined,
  })
  registerInviteMethod(node.rpc, invites)

  return {
    invites,
    allow: (service, ref) => change(service, ref, true),
    deny: (service, ref) => change(service, ref, false),
    invite: async (service, ttlMs) => {
      const created = await invites.create(service, ttlMs)
      const ident = node.identity()
      return {
        ...created,
        id: ident.id,
        ticket: opts.config().relays.length > 0 ? ident.shortTicket : ident.ticket,
        webBases: webBasesOf(opts.config().relays),
      }
    },
  }
}
