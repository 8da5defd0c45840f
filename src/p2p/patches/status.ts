/**
 * Whether Warren's workarounds of libp2p behaviours (UPSTREAM.md) took effect. Each is installed from outside, on
 * objects whose shape is libp2p's internals; when a dependency changes that shape, the installer finds no hook and
 * the workaround does nothing. That must not go unnoticed: each installer reports such a miss here, which emits one
 * process warning per workaround (code `WARREN_PATCH_MISSED`, on stderr by default) and keeps the reason for
 * {@link patchesMissed}. The node keeps running without the workaround.
 *
 * @example
 * ```ts
 * if (patchesMissed().size > 0) console.warn([...patchesMissed()])
 * ```
 */

/** Warren's workarounds, as named in UPSTREAM.md. */
export type PatchName =
  | 'leanListeners'
  | 'keepPauseOnResume'
  | 'honestMuxer'
  | 'holdWindowUpdates'
  | 'indexStreams'
  | 'coalescing'
  | 'batching'
  | 'quietNoiseDecoder'
  | 'skipUnheardEvents'
  | 'optimisticSelect'
  | 'optimisticHandle'
  | 'knownProtocols'
  | 'takeBackAfterEnd'
  | 'linearConnectionList'
  | 'sodiumEd25519'

const missed = new Map<PatchName, string>()

/** Records that `name` could not be installed; warns once per workaround and process. */
export function patchMissed(name: PatchName, reason: string): void {
  if (missed.has(name)) return
  missed.set(name, reason)
  process.emitWarning(`Warren's ${name} workaround is not in effect: ${reason} (see UPSTREAM.md)`, {
    code: 'WARREN_PATCH_MISSED',
  })
}

/** The workarounds that could not be installed in this process, with the reason of each. */
export function patchesMissed(): ReadonlyMap<PatchName, string> {
  return missed
}
