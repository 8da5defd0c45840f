/**
 * Seeded randomness for tests that pick a mix (the connection storms): the same seed gives the same mix, and a
 * failure names its seed. `WARREN_CHAOS_SEED` repeats a run.
 */

/** mulberry32: small, seeded, good enough to pick a mix; numbers in [0, 1). */
export function generator(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The run's seed: `WARREN_CHAOS_SEED`, or a new one. */
export const seedOf = (): number => Number(process.env.WARREN_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))
