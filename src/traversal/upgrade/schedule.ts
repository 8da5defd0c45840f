/**
 * When `DirectPaths` tries again: a first upgrade that failed is retried after 1 s and 30 s ({@link FIRST_RETRIES}),
 * unless no punch can meet; a direct path that was lost is punched again at once, then after 1, 2, 4, 8 and 16 s, at
 * most {@link REPUNCH_ATTEMPTS} times.
 *
 * @packageDocumentation
 */
import type { WarrenError } from '../../errors.ts'

/**
 * Retries of a first upgrade that failed, at most: a birthday attempt that missed (p ≈ 0.95 per try in the lab), or
 * UDP that was blocked for a moment. Not when both NATs map per destination: no punch can meet there.
 */
export const FIRST_RETRIES = 2

/** Wait before retry `n` (1, 2) of a failed first upgrade: 1 s, then 30 s. */
export function firstRetryDelay(n: number): number {
  return n <= 1 ? 1_000 : 30_000
}

/** Re-punches after a lost direct path, at most (the first at once, then after {@link repunchDelay}). */
export const REPUNCH_ATTEMPTS = 6

/** Wait before re-punch attempt `n` (2, 3, …): 1 s, doubling, at most 30 s. */
export function repunchDelay(n: number): number {
  return Math.min(1000 * 2 ** (n - 2), 30_000)
}

/** Bounds of a re-punch: it follows a path that worked, so short bounds make the retries come quickly. */
export const REPUNCH_BOUNDS = { timeoutMs: 10_000, punchTimeoutMs: 5_000 } as const

/** Whether a failed upgrade is not worth retrying: both NATs map per destination, or the peer refuses this node. */
export function hopeless(e: WarrenError): boolean {
  const nats = e.details?.nats as { local: string; remote: string } | undefined
  return (nats?.local === 'hard' && nats.remote === 'hard') || refused(e)
}

/** Whether the peer refused this node's punch request (punch/gate.ts). */
export function refused(e: WarrenError): boolean {
  return e.details?.refused === true
}
