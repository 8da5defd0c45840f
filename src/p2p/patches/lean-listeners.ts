/**
 * Listeners that cost what Node's EventTarget costs, no more. libp2p's streams, muxers and connections are
 * `TypedEventEmitter`s (the `main-event` package), whose `addEventListener` wraps every listener in a closure,
 * creates a second closure for an abort signal whether or not one was given, an options object and a list entry,
 * and keeps that entry in a map of its own besides the one Node's EventTarget keeps: about 200 bytes more per
 * listener, and an open service stream holds nine of them on each end.
 *
 * {@link leanListeners} patches the shared prototype so that a listener added without options (or with an options
 * object that sets none of `capture`, `once`, `signal` and `passive`) is registered with Node's EventTarget as it is,
 * and nothing else is kept: Node's EventTarget already ignores a second registration of the same listener, removes
 * it, and counts it ({@link nativeCount}). Listeners with options take the package's own path, whose wrappers Node's
 * EventTarget holds too, so `listenerCount` is Node's count of both kinds; `removeEventListener` removes a plain
 * listener from Node's EventTarget and hands the package its own. Dispatching is Node's in both cases, so nothing
 * else changes: a listener function is called with the event, an object's `handleEvent` too.
 * Process-wide like src/p2p/patches/unheard-events.ts, so installed only when asked (the `warren up` and
 * `warren-relay` daemons ask).
 */
import { getEventListeners } from 'node:events'
import { TypedEventEmitter } from 'main-event'
import { patchMissed } from './status.ts'

const PATCHED = Symbol.for('warren.leanListeners')

type Listener = ((evt: Event) => void) | { handleEvent(evt: Event): void }
type Options = boolean | AddEventListenerOptions | EventListenerOptions | undefined

interface Patchable {
  addEventListener(type: string, listener: Listener | null, opts?: Options): void
  removeEventListener(type: string, listener: Listener | null, opts?: Options): void
  listenerCount(type: string): number
  [PATCHED]?: true
}

/** Options the lean path takes: none, `false`, or an object that sets none of them. */
function plain(opts: Options): boolean {
  if (opts === undefined || opts === false) return true
  if (opts === true || typeof opts !== 'object' || opts === null) return false
  const o = opts as AddEventListenerOptions
  return o.capture !== true && o.once !== true && o.signal == null && o.passive == null
}

/**
 * The key under which Node's EventTarget keeps its listeners: a Map of type → list head, whose `size` Node keeps as
 * listeners come and go. `getEventListeners` reads the same list and copies it into a new array on every call, and
 * libp2p's streams ask for the count of `message` listeners on every message (0.04 µs a call against 0.005, in a
 * loop). Internal to Node, so it is used only when a probe at load shows it counting as `getEventListeners` does.
 */
const kEvents = Object.getOwnPropertySymbols(new EventTarget()).find((s) => s.description === 'kEvents')

interface ListHead {
  size?: unknown
}

interface ListHeads {
  get?(type: string): ListHead | undefined
}

/** Node's count of the listeners of `type` on `target` from its own list head; undefined when that is not there. */
function countedByNode(target: EventTarget, type: string): number | undefined {
  if (kEvents === undefined) return undefined
  const lists = (target as unknown as Record<symbol, ListHeads | undefined>)[kEvents]
  // Node makes the map at the first listener; it is Node's own Map class, not an instance of the Map programs see
  if (lists === undefined) return 0
  if (typeof lists.get !== 'function') return undefined
  const head = lists.get(type)
  if (head === undefined) return 0
  return typeof head.size === 'number' ? head.size : undefined
}

/** True when {@link countedByNode} agrees with `getEventListeners` as listeners are added and removed. */
function headsCount(): boolean {
  const t = new EventTarget()
  const same = (): boolean => countedByNode(t, 'x') === getEventListeners(t, 'x').length
  const a = (): void => {}
  const b = (): void => {}
  const checks = [same()]
  t.addEventListener('x', a)
  t.addEventListener('x', b)
  t.addEventListener('x', a)
  checks.push(same(), countedByNode(t, 'x') === 2)
  t.removeEventListener('x', a)
  checks.push(same())
  t.removeEventListener('x', b)
  checks.push(same())
  return checks.every(Boolean)
}

/** True when {@link nativeCount} reads Node's list heads (false: it asks `getEventListeners`). */
export const countsFromHeads = headsCount()

/** The number of listeners of `type` Node's EventTarget holds on `target`. */
export const nativeCount: (target: EventTarget, type: string) => number = countsFromHeads
  ? (target, type) => countedByNode(target, type) ?? getEventListeners(target, type).length
  : (target, type) => getEventListeners(target, type).length

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
    nativeAdd.call(this as unknown as EventTarget, type, listener)
  }
  proto.removeEventListener = function (this: Patchable, type, listener, opts) {
    // a plain listener is registered as itself; the package registers wrappers, which this leaves alone
    if (listener != null) nativeRemove.call(this as unknown as EventTarget, type, listener, opts)
    if (count.call(this, type) > 0) remove.call(this, type, listener, opts)
  }
  proto.listenerCount = function (this: Patchable, type) {
    return nativeCount(this as unknown as EventTarget, type)
  }
  proto[PATCHED] = true
  return true
}
