/**
 * Events nobody listens to are not built. libp2p's streams, muxers and connections are `TypedEventEmitter`s (the
 * `main-event` package) and announce much of what they do with `safeDispatchEvent`, which creates a `CustomEvent`
 * and runs Node's `EventTarget.dispatchEvent` whether or not anything listens. A stream's `send` alone dispatches
 * `idle` each time its write buffer empties, which for a proxied request is every time, and nothing in Warren
 * listens for it: one event object and one dispatch per request and direction, in both daemons. Skipping them gave
 * the gateway a fifth to a third more requests/s in interleaved A/B runs of `bench/http.ts` (docs/access.md).
 *
 * {@link skipUnheardEvents} makes `safeDispatchEvent` return at once when the type has no listener. That is what
 * dispatching to no listener returns anyway (`true`: nothing could cancel it), so nothing else changes. It patches
 * the shared prototype once per process, so every `main-event` emitter in the process gets it, not only Warren's
 * nodes: `createNode` installs it only when asked (`NodeOptions.skipUnheardEvents`, which the `warren up` and
 * `warren-relay` daemons set), never for a library user by default. Listeners added with `addEventListener` are all
 * counted by `listenerCount`, which is what is checked.
 *
 * @example
 * ```ts
 * skipUnheardEvents() // before or after nodes are created: the prototype is shared
 * ```
 */
import { TypedEventEmitter } from 'main-event'
import { patchMissed } from './status.ts'

const PATCHED = Symbol.for('warren.skipUnheardEvents')

interface Patchable {
  safeDispatchEvent(type: string, detail?: unknown): boolean
  listenerCount(type: string): number
  [PATCHED]?: true
}

/**
 * Patches `TypedEventEmitter.prototype.safeDispatchEvent` to skip types without listeners (idempotent); false (and a
 * warning, src/p2p/patches/status.ts) when the prototype lacks the methods it relies on.
 */
export function skipUnheardEvents(): boolean {
  const proto = TypedEventEmitter.prototype as unknown as Patchable
  if (proto[PATCHED] === true) return true
  if (typeof proto.safeDispatchEvent !== 'function' || typeof proto.listenerCount !== 'function') {
    patchMissed('skipUnheardEvents', '`TypedEventEmitter.prototype` has no `safeDispatchEvent`/`listenerCount`')
    return false
  }
  const dispatch = proto.safeDispatchEvent
  proto.safeDispatchEvent = function (this: Patchable, type, detail) {
    if (this.listenerCount(type) === 0) return true
    return dispatch.call(this, type, detail)
  }
  proto[PATCHED] = true
  return true
}

/** Whether {@link skipUnheardEvents} is in effect in this process. */
export function unheardEventsSkipped(): boolean {
  return (TypedEventEmitter.prototype as unknown as Patchable)[PATCHED] === true
}
