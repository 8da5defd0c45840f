/**
 * A reservation's expiry timer that can be moved any number of times.
 *
 * @libp2p/circuit-relay-v2 4.2.13 refreshes a reservation with `signal.reset(ttl)` on a `retimeable-signal` 1.0.1
 * signal, whose `reset` removes only the listener it was created with: after the second refresh the timer of the
 * first one still fires and deletes the reservation, one TTL after the first refresh, although the node kept renewing
 * it (UPSTREAM.md). Before libp2p refreshes a reservation, Warren puts one of these in its place; a timer that has
 * been moved or cleared never fires, and the expiry deletes the reservation only if it is still this one.
 */

import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * Runs a function in the async context this module was loaded in. A timer keeps the context it was created in for as
 * long as it is pending, and reservations are made inside a per-request context (hooks.ts): armed there, every
 * reservation's timer would keep a context of its own (a Map, ~180 bytes) for as long as the reservation lives.
 */
const outside = AsyncLocalStorage.snapshot()

export interface ReservationTimer extends EventTarget {
  readonly aborted: boolean
  reset(ms?: number): void
  clear(): void
}

/** Calls `expire` `ms` from now, or `ms` from the latest `reset`; never after `clear`. */
export function reservationTimer(ms: number, expire: () => void): ReservationTimer {
  const target = new EventTarget() as ReservationTimer & { aborted: boolean }
  let timer: NodeJS.Timeout | undefined
  const arm = (after: number): void => {
    clearTimeout(timer)
    timer = outside(() =>
      setTimeout(() => {
        target.aborted = true
        expire()
        target.dispatchEvent(new Event('abort'))
      }, after).unref(),
    )
  }
  target.aborted = false
  target.reset = (newMs?: number) => arm(newMs ?? ms)
  target.clear = () => {
    clearTimeout(timer)
    timer = undefined
  }
  arm(ms)
  return target
}
