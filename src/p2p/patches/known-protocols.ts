/**
 * A peer store that does not rewrite a peer's record for a protocol it already lists.
 *
 * Why: libp2p 3.3.11 calls `peerStore.merge(peer, { protocols: [protocol] })` for every stream it opens or accepts
 * (`Connection.newStream`, `Connection.onIncomingStream`). @libp2p/peer-store 12.0.28 does the whole round for each:
 * takes the peer's write lock, reads and decodes the stored record, rebuilds it with every address parsed as a
 * multiaddr, encodes and writes it back, and decodes it once more for the answer, although the protocol has been in
 * the record since the first stream. On a node that opens a stream per forwarded connection that is a large part of
 * the CPU a new connection costs on each end.
 *
 * How, without touching node_modules: {@link skipKnownProtocolMerges} wraps the instance's write methods. A merge of
 * protocols only (libp2p's per-stream call) whose protocols the record is known to list is answered with the peer
 * as that merge last returned it, without touching the store, for at most {@link KNOWN_FOR_MS}; past that the next
 * one merges again (the record's `updated` time is refreshed as before, so an active peer never ages out). What is
 * known comes from the answers of real merges only; any other write of the peer (`save`, `patch`, another `merge`,
 * `delete`) forgets it before and after it runs, and `consumePeerRecord` forgets every peer. A merge that ran while
 * such a write was under way teaches nothing. The skipped merge would not have changed the record (the protocols
 * were there) and would have dispatched no `peer:update`.
 */
import { patchMissed } from './status.ts'

/** How long a peer's protocols are taken as stored without a merge, ms. */
export const KNOWN_FOR_MS = 30_000
/**
 * Peers remembered at once (each with the peer as its merge returned it, a few KiB); past this the memory starts
 * empty again, so a node with many more active peers (a relay) merges as before.
 */
const MAX_KNOWN = 256

type Write = (id: unknown, data?: unknown, options?: unknown) => Promise<unknown>

/** The parts of @libp2p/peer-store's PersistentPeerStore wrapped here. */
interface PatchableStore {
  merge?: Write
  save?: Write
  patch?: Write
  delete?: Write
  consumePeerRecord?: (...args: unknown[]) => Promise<unknown>
}

interface Known {
  protocols: Set<string>
  /** The peer as the merge that taught this returned it. */
  peer: unknown
  at: number
}

/** True for `{ protocols: [...] }` and nothing else: libp2p's per-stream merge. */
function protocolsOnly(data: unknown): data is { protocols: string[] } {
  if (typeof data !== 'object' || data === null) return false
  const keys = Object.keys(data)
  return keys.length === 1 && keys[0] === 'protocols' && Array.isArray((data as { protocols: unknown }).protocols)
}

const INSTALLED = Symbol.for('warren.knownProtocols')

/** Installs the wrapper on one peer store (idempotent); false, reported as missed, when the store lacks a method. */
export function skipKnownProtocolMerges(store: unknown, knownForMs = KNOWN_FOR_MS): boolean {
  const s = store as PatchableStore & { [INSTALLED]?: true }
  if (s[INSTALLED] === true) return true
  const { merge, save, patch } = s
  if (
    typeof merge !== 'function' ||
    typeof save !== 'function' ||
    typeof patch !== 'function' ||
    typeof s.delete !== 'function' ||
    typeof s.consumePeerRecord !== 'function'
  ) {
    patchMissed('knownProtocols', 'the peer store lacks merge, save, patch, delete or consumePeerRecord')
    return false
  }
  const known = new Map<string, Known>()
  /** Bumped by every write that may change what a record lists. */
  let generation = 0
  const forget = (id: unknown): void => {
    generation++
    known.delete(String(id))
  }
  /** `write` with the peer forgotten before and after it. */
  const forgetting =
    (write: Write): Write =>
    async (id, data, options) => {
      forget(id)
      try {
        return await write.call(s, id, data, options)
      } finally {
        forget(id)
      }
    }
  const mergeAny = forgetting(merge)
  s.merge = async (id, data, options) => {
    if (!protocolsOnly(data)) return mergeAny(id, data, options)
    const key = String(id)
    const k = known.get(key)
    if (k !== undefined && Date.now() - k.at < knownForMs && data.protocols.every((p) => k.protocols.has(p))) {
      return k.peer
    }
    const before = generation
    const peer = (await merge.call(s, id, data, options)) as { protocols?: unknown }
    if (generation === before && Array.isArray(peer?.protocols)) {
      if (known.size >= MAX_KNOWN) known.clear()
      known.set(key, { protocols: new Set(peer.protocols as string[]), peer, at: Date.now() })
    }
    return peer
  }
  s.save = forgetting(save)
  s.patch = forgetting(patch)
  s.delete = forgetting(s.delete)
  const consume = s.consumePeerRecord
  s.consumePeerRecord = async (...args) => {
    generation++
    known.clear()
    try {
      return await consume.apply(s, args)
    } finally {
      generation++
      known.clear()
    }
  }
  s[INSTALLED] = true
  return true
}
