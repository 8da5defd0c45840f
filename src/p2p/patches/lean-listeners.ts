/**
 * Listeners that cost what Node's EventTarget costs, no more. libp2p's streams, muxers and connections are
 * `TypedEventEmitter`s (the `main-event` package), whose `addEventListener` wraps every listener in a closure,
 * creates a second closure for an abort signal whether or not one was given, an options object and a list entry,
 * and keeps that entry in a map of its own besides the one Node's EventTarget keeps: about 200 bytes more per
 * listener, and an open service stream holds nine of them on each end.
 *
 * {@link leanListeners} patches the shared prototype so that a listener added without options (or with
 * `{ capture: false }`-free defaults, i.e. `undefined`/`false`) is registered with Node's EventTarget as it is and
 * only remembered in a per-emitter list of (type, listener) pairs, an array of exactly their size (a Map costs 150
 * bytes before its first entry, and a list grown by `push` keeps room for 16 more: a connection is four emitters); listeners with `once`, `signal`, `capture` or `passive` take the
 * package's own path. `listenerCount` counts both, `removeEventListener` finds either, and dispatching is Node's in
 * both cases, so nothing else changes: a listener function is called with the event, an object's `handleEvent` too.
 * Process-wide like src/p2p/patches/unheard-events.ts, so installed only when asked (the `warren up` and
 * `warren-relay` daemons ask).
 */
import { TypedEventEmitter } from 'main-event'
import { patchMissed } from './status.ts'

const PATCHED = Symbol.for('warren.leanListeners')
const LEAN = Symbol('warren.leanListeners.byType')

type Listener = ((evt: Event) => void) | { handleEvent(evt: Event): void }
type Options = boolean | AddEventListenerOptions | EventListenerOptions | undefined

interface Patchable {
  addEventListener(type: string, listener: Listener | null, opts?: Options): void
  removeEventListener(type: string, listener: Listener | null, opts?: Options): void
  listenerCount(type: string): number
  /** `type, listener, type, listener, …`; replaced, never grown, so that it stays the size of its contents. */
  [LEAN]?: (string | Listener)[] | undefined
  [PATCHED]?: true
}

/** Options the lean path takes: none, `false`, or an object that sets none of them. */
function plain(opts: Options): boolean {
  if (opts === undefined || opts === false) return true
  if (opts === true || typeof opts !== 'object' || opts === null) return false
  const o = opts as AddEventListenerOptions
  return o.capture !== true && o.once !== true && o.signal == null && o.passive == null
}

/** The index of the pair (`type`, `listener`) in `pairs`, or -1. */
function pairAt(pairs: readonly (string | Listener)[] | undefined, type: string, listener: Listener | null): number {
  if (pairs === undefined || listener == null) return -1
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === type && pairs[i + 1] === listener) return i
  return -1
}

const nativeAdd = EventTarget.prototype.addEventListener
const nativeRemove = EventTarget.prototype.removeEventListener

/**
 * Patches `TypedEventEmitter.prototype`'s `addEventListener`, `removeEventListener` and `listenerCount`
 * (idempotent); false (and a warning, src/p2p/patches/status.ts) when the prototype lacks them.
 */
export function leanListeners(): boolean {
  const proto = TypedEventEmitter.prototype as unknown as Patchable
  if (proto[PATCHED] === true) return true
  const { addEventListener: add, removeEventListener: remove, listenerCount: count } = proto
  if (typeof add !== 'function' || typeof remove !== 'function' || typeof count !== 'function') {
    patchMissed('leanListeners', '`TypedEventEmitter.prototype` has no `addEventListener`/`listenerCount`')
    return false
  }
  proto.addEventListener = function (this: Patchable, type, listener, opts) {
    if (listener == null || !plain(opts)) return add.call(this, type, listener, opts)
    const pairs = this[LEAN]
    if (pairAt(pairs, type, listener) >= 0) return
    this[LEAN] = pairs === undefined ? [type, listener] : pairs.concat(type, listener)
    nativeAdd.call(this as unknown as EventTarget, type, listener)
  }
  proto.removeEventListener = function (this: Patchable, type, listener, opts) {
    const pairs = this[LEAN]
    const i = pairAt(pairs, type, listener)
    if (i >= 0 && (opts === undefined || opts === false || (typeof opts === 'object' && opts.capture !== true))) {
      this[LEAN] = pairs!.length === 2 ? undefined : pairs!.toSpliced(i, 2)
      nativeRemove.call(this as unknown as EventTarget, type, listener as Listener)
      return
    }
    remove.call(this, type, listener, opts)
  }
  proto.listenerCount = function (this: Patchable, type) {
    const pairs = this[LEAN]
    let lean = 0
    if (pairs !== undefined) for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === type) lean++
    return count.call(this, type) + lean
  }
  proto[PATCHED] = true
  return true
}
