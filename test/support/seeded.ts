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

/** `count` scenario names drawn with `pick` from `names` (or those in `WARREN_CHAOS_ONLY`), and how many of each. */
export function planOf(
  names: string[],
  count: number,
  pick: (max: number) => number,
): { plan: string[]; mix: Record<string, number> } {
  const from = process.env.WARREN_CHAOS_ONLY?.split(',') ?? names
  const plan = Array.from({ length: count }, () => from[pick(from.length)]!)
  const mix: Record<string, number> = {}
  for (const n of plan) mix[n] = (mix[n] ?? 0) + 1
  return { plan, mix }
}

/** `run`'s problem, prefixed with `name`; a run that throws or takes over `limitMs` is a problem too. */
export async function bounded(
  name: string,
  run: Promise<string | undefined>,
  limitMs: number,
): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<string>((r) => {
    timer = setTimeout(() => r(`hung for ${limitMs} ms`), limitMs)
  })
  try {
    const problem = await Promise.race([run.catch((e: Error) => `threw ${e.message}`), limit])
    return problem === undefined ? undefined : `${name}: ${problem}`
  } finally {
    clearTimeout(timer)
  }
}

/** Runs every scenario of `plan` through `each`, `atOnce` at a time, each within `limitMs`; resolves with the problems. */
export async function runPlan(
  plan: string[],
  atOnce: number,
  limitMs: number,
  each: (name: string) => Promise<string | undefined>,
): Promise<string[]> {
  const problems: string[] = []
  let i = 0
  const worker = async (): Promise<void> => {
    while (i < plan.length) {
      const name = plan[i++]!
      const problem = await bounded(name, each(name), limitMs)
      if (problem !== undefined) problems.push(problem)
    }
  }
  await Promise.all(Array.from({ length: atOnce }, worker))
  return problems
}
