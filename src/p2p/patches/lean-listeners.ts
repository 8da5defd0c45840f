/**
 * Listeners that cost what Node's EventTarget costs, no more. libp2p's streams, muxers and connections are
 * `TypedEventEmitter`s (the `main-event` package), whose `addEventListener` wraps every listener in a closure,
 * creates a second closure for an abort signal whether or not one was given, an options object and a list entry,
 * and keeps that entry in a map of its own besides the one Node's EventTarget keeps: about 200 bytes more per
 * listener, and an open service stream holds nine of them on each end.
 *
 * {@link leanListeners} patches the shared prototype so that a listener added without options (or with
 * `{ capture: false }`-free defaults, i.e. `undefined`/`false`) is registered with Node's EventTarget as it is and
 * only remembered in a per-emitter map by type; listeners with `once`, `signal`, `capture` or `passive` take the
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
  [LEAN]?: Map<string, Listener[]>
  [PATCHED]?: true
}

/** Options the lean path takes: none, `false`, or an object that sets none of them. */
function plain(opts: Options): boolean {
  if (opts === undefined || opts === false) return true
  if (opts === true || typeof opts !== 'object' || opts === null) return false
  const o = opts as AddEventListenerOptions
  return o.capture !== true && o.once !== true && o.signal == null && o.passive == null
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
    let byType = this[LEAN]
    if (byType === undefined) {
      byType = new Map()
      this[LEAN] = byType
    }
    const list = byType.get(type)
    if (list === undefined) byType.set(type, [listener])
    else if (list.includes(listener)) return
    else list.push(listener)
    nativeAdd.call(this as unknown as EventTarget, type, listener)
  }
  proto.removeEventListener = function (this: Patchable, type, listener, opts) {
    const list = this[LEAN]?.get(type)
    const i = list === undefined || listener == null ? -1 : list.indexOf(listener)
    if (i >= 0 && (opts === undefined || opts === false || (typeof opts === 'object' && opts.capture !== true))) {
      if (list!.length === 1) this[LEAN]!.delete(type)
      else list!.splice(i, 1)
      nativeRemove.call(this as unknown as EventTarget, type, listener as Listener)
      return
    }
    remove.call(this, type, listener, opts)
  }
  proto.listenerCount = function (this: Patchable, type) {
    return count.call(this, type) + (this[LEAN]?.get(type)?.length ?? 0)
  }
  proto[PATCHED] = true
  return true
}
