/**
 * The nodes this node knows: every node named in config `peers`, in a service's `allow` list, or a relay in config
 * `relays`. Known nodes always get a connection slot (src/node/stranger-gate.ts), are tagged in libp2p's peer store
 * so that its connection pruner closes strangers' connections first, and may ask for direct paths
 * (src/traversal/punch/gate.ts). The set changes at runtime (`warren expose … --allow`): {@link KnownPeers.set} takes
 * the new one and moves the tags.
 *
 * @example
 * ```ts
 * const known = new KnownPeers(knownIdsOf(config))
 * known.attach(libp2p)          // tags the known nodes
 * known.has('12D3KooW…')        // true
 * ```
 */
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Config } from '../config/schema.ts'
import { parseNodeId } from '../identity/node-id.ts'
import { parseRelayAddr } from '../relay/client/home-relay.ts'
import { peerRefId } from '../services/registry.ts'

/** The peer store tag of known nodes; libp2p's pruner closes connections of the lowest summed tag values first. */
export const KNOWN_TAG = 'warren-known'
const KNOWN_TAG_VALUE = 100

/** Base58 ids of `peers`, of the relays, and of the given allow sets (or of config services' allow entries). */
export function knownIdsOf(config: Config, allowed?: Iterable<ReadonlySet<string> | undefined>): Set<string> {
  const ids = new Set<string>()
  const add = (f: () => string): void => {
    try {
      ids.add(f())
    } catch {
      // not a node id: the config schema and the registry report it
    }
  }
  for (const ref of Object.values(config.peers)) add(() => peerRefId(ref))
  for (const relay of config.relays) add(() => parseRelayAddr(relay).id.toString())
  if (allowed !== undefined) {
    for (const set of allowed) for (const id of set ?? []) ids.add(id)
  } else {
    for (const svc of Object.values(config.services)) {
      for (const entry of svc.allow ?? []) {
        if (entry === '*') continue
        const ref = config.peers[entry]
        add(() => (ref === undefined ? parseNodeId(entry).toString() : peerRefId(ref)))
      }
    }
  }
  return ids
}

export class KnownPeers {
  #ids: Set<string>
  #libp2p: Libp2p | undefined

  constructor(ids: Set<string> = new Set()) {
    this.#ids = ids
  }

  has(id: string): boolean {
    return this.#ids.has(id)
  }

  ids(): ReadonlySet<string> {
    return this.#ids
  }

  /** Tags the known nodes in `libp2p`'s peer store, now and after every {@link set}. */
  attach(libp2p: Libp2p): void {
    this.#libp2p = libp2p
    for (const id of this.#ids) this.#tag(id, true)
  }

  /** Replaces the set; nodes that joined are tagged, nodes that left lose the tag. */
  set(ids: Set<string>): void {
    const old = this.#ids
    this.#ids = ids
    for (const id of ids) if (!old.has(id)) this.#tag(id, true)
    for (const id of old) if (!ids.has(id)) this.#tag(id, false)
  }

  #tag(id: string, on: boolean): void {
    const libp2p = this.#libp2p
    if (libp2p === undefined || libp2p.status !== 'started') return
    void libp2p.peerStore
      .merge(peerIdFromString(id), { tags: { [KNOWN_TAG]: on ? { value: KNOWN_TAG_VALUE } : undefined } })
      .catch(() => undefined)
  }
}
