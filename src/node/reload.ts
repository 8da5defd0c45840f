/**
 * A new config.json applied to a running node: `peers` (aliases and tickets), the services config.json names with
 * their allow lists, and the stream limits (who may call the node's RPC methods is applied by the node itself). Everything is checked before anything changes, so a config that cannot
 * be applied (an allow list of a `warren expose`d service naming a removed alias) is refused whole and the old one
 * keeps running. Streams the new rules still admit go on; the host resets those they no longer admit (service
 * removed, target changed, peer no longer allowed). `traversal.portMapping` is applied by the node (its port-mapping
 * part stops and starts the mapper). Other keys are read only at start; a reload names the ones that changed, so the
 * caller can say a restart is needed for them.
 */
import type { Config, ServiceConfig } from '../config/schema.ts'
import type { AddressBook } from '../identity/address-book.ts'
import type { ServiceHost } from '../services/host.ts'
import { type ServiceEntry, ServiceRegistry } from '../services/registry.ts'

/** The limits a running node takes over; the others (stranger connections, dial time of the dialer) need a restart. */
export const RELOADABLE_LIMITS = [
  'connectTimeoutMs',
  'maxStreams',
  'maxStreamsPerPeer',
  'maxPublicStreams',
  'maxPublicStreamsPerPeer',
] as const

export interface ReloadResult {
  /** Services of config.json added, changed and removed. */
  services: { added: string[]; changed: string[]; removed: string[] }
  /** Whether `peers` changed. */
  peers: boolean
  /** Limits that changed and were applied. */
  limits: string[]
  /** Whether `traversal.portMapping` changed (the node applies it). */
  portMapping: boolean
  /** Keys that changed but are read only at start (e.g. `listen`, `proxy`, `limits.dialTimeoutMs`). */
  needsRestart: string[]
}

/** A registry entry as the config form it was built from. */
function configOf(e: ServiceEntry): ServiceConfig {
  const svc: ServiceConfig = { target: e.target, kubo: e.kubo }
  if (e.allow !== undefined) svc.allow = [...e.allow]
  if (e.type !== 'tcp') svc.type = e.type
  if (e.description !== undefined) svc.description = e.description
  return svc
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

export interface ReloadParts {
  registry: ServiceRegistry
  addressBook: AddressBook
  host: ServiceHost
}

/** Checks `next` against the running services, then applies it; throws (changing nothing) when it cannot apply. */
export function applyConfig(parts: ReloadParts, prev: Config, next: Config): ReloadResult {
  const { registry, addressBook, host } = parts
  const runtime = registry.list().filter((s) => s.source === 'runtime')
  // everything the new rules would build, built aside first: any error refuses the whole reload
  const scratch = new ServiceRegistry(next.peers)
  for (const [name, svc] of Object.entries(next.services)) {
    if (!runtime.some((r) => r.name === name)) scratch.add(name, svc, 'config')
  }
  for (const r of runtime) scratch.add(r.name, configOf(registry.get(r.name)!), 'runtime', true)

  const result: ReloadResult = {
    services: { added: [], changed: [], removed: [] },
    peers: !same(prev.peers, next.peers),
    limits: [],
    portMapping: !same(prev.traversal.portMapping, next.traversal.portMapping),
    needsRestart: [],
  }
  if (result.peers) {
    addressBook.setPeers(next.peers)
    registry.setPeers(next.peers)
  }
  for (const s of registry.list()) {
    if (s.source === 'config' && !(s.name in next.services)) {
      registry.remove(s.name)
      result.services.removed.push(s.name)
    }
  }
  for (const [name, svc] of Object.entries(next.services)) {
    const now = registry.get(name)
    if (now?.source === 'runtime') continue // `warren expose` replaced it; state.json keeps that one
    if (now === undefined) result.services.added.push(name)
    else if (!same(configOf(now), configOf(scratch.get(name)!))) result.services.changed.push(name)
    else continue
    registry.add(name, svc, 'config', true)
  }
  for (const k of RELOADABLE_LIMITS) if (prev.limits[k] !== next.limits[k]) result.limits.push(k)
  if (result.limits.length > 0) host.setLimits(next.limits)
  for (const k of Object.keys({ ...prev, ...next }) as (keyof Config)[]) {
    if (k === 'peers' || k === 'services') continue
    if (k === 'limits') {
      for (const l of Object.keys(next.limits) as (keyof Config['limits'])[]) {
        if (!(RELOADABLE_LIMITS as readonly string[]).includes(l) && prev.limits[l] !== next.limits[l]) {
          result.needsRestart.push(`limits.${l}`)
        }
      }
    } else if (k === 'rpc') {
      // who may call (allow, public) is applied by the node; the server's limits are read at start
      const { allow: _a, public: _p, ...rest } = prev.rpc
      const { allow: _b, public: _q, ...nextRest } = next.rpc
      if (!same(rest, nextRest)) result.needsRestart.push('rpc')
    } else if (k === 'traversal') {
      // port mapping is applied by the node; the rest of traversal is read at start
      const { portMapping: _a, ...rest } = prev.traversal
      const { portMapping: _b, ...nextRest } = next.traversal
      if (!same(rest, nextRest)) result.needsRestart.push('traversal')
    } else if (!same(prev[k], next[k])) result.needsRestart.push(k)
  }
  return result
}
