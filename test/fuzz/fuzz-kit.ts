/**
 * Property-based fuzzing helpers (fast-check) shared by test/fuzz/*.test.ts.
 *
 * - `npm test` runs each property a small number of times (the default given at each call), so the fuzz files
 *   take a few seconds.
 * - `FUZZ_RUNS=<n>` runs every pure-parser property n times and every socket property n/10 times (at least the
 *   default); `FUZZ_SEED=<n>` replays a seed. `npm run fuzz` (scripts/fuzz.ts) sets them and prints the report.
 * - `FUZZ_REPORT=<file>`: each property appends one JSON line `{ name, runs, failures, seed, ms, counterexample? }`.
 */
import assert from 'node:assert/strict'
import { appendFileSync } from 'node:fs'
import fc from 'fast-check'
import { WarrenError } from '../../src/errors.ts'

const envRuns = Number(process.env.FUZZ_RUNS ?? '')
const envSeed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

/** Runs for a property: the default in `npm test`, FUZZ_RUNS (or a tenth of it for `kind: 'socket'`) when set. */
export function runsFor(defaultRuns: number, kind: 'pure' | 'socket' = 'pure'): number {
  if (!Number.isInteger(envRuns) || envRuns <= 0) return defaultRuns
  return Math.max(defaultRuns, kind === 'socket' ? Math.floor(envRuns / 10) : envRuns)
}

interface FuzzOptions {
  runs: number
  kind?: 'pure' | 'socket'
  /** Outcome counts the property keeps (e.g. replies by code), written to the report. */
  outcomes?: Map<string, number>
}

/** Counts one outcome in `m`. */
export function count(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1)
}

function report(name: string, details: fc.RunDetails<unknown>, ms: number, outcomes?: Map<string, number>): void {
  const file = process.env.FUZZ_REPORT
  const failures = details.failed ? 1 : 0
  if (file !== undefined) {
    const line: Record<string, unknown> = { name, runs: details.numRuns, failures, seed: details.seed, ms }
    if (outcomes !== undefined) line.outcomes = Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1]))
    if (details.failed) {
      line.counterexample = fc.stringify(details.counterexample)
      line.error = String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance)
    }
    appendFileSync(file, `${JSON.stringify(line)}\n`)
  }
}

function params(o: FuzzOptions): fc.Parameters<unknown> {
  const p: fc.Parameters<unknown> = { numRuns: runsFor(o.runs, o.kind) }
  if (envSeed !== undefined && Number.isFinite(envSeed)) p.seed = envSeed
  return p
}

function finish(name: string, details: fc.RunDetails<unknown>, started: number, o: FuzzOptions): void {
  report(name, details, Math.round(performance.now() - started), o.outcomes)
  if (details.failed) {
    const cause = details.errorInstance as Error | undefined
    assert.fail(
      `${name}: property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath})\n` +
        `counterexample: ${fc.stringify(details.counterexample)}\n${cause?.stack ?? String(cause)}`,
    )
  }
}

/** Checks a synchronous property; fails the test with the shrunk counterexample. */
export function fuzz<T>(name: string, arb: fc.Arbitrary<T>, predicate: (v: T) => void, o: FuzzOptions): void {
  const started = performance.now()
  const details = fc.check(
    fc.property(arb, (v) => {
      predicate(v)
    }),
    params(o) as fc.Parameters<[T]>,
  )
  finish(name, details as fc.RunDetails<unknown>, started, o)
}

/** Checks an asynchronous property (runs one at a time). */
export async function fuzzAsync<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (v: T) => Promise<void>,
  o: FuzzOptions,
): Promise<void> {
  const started = performance.now()
  const details = await fc.check(
    fc.asyncProperty(arb, async (v) => {
      await predicate(v)
    }),
    params(o) as fc.Parameters<[T]>,
  )
  finish(name, details as fc.RunDetails<unknown>, started, o)
}

/**
 * Calls `parse`: a returned value goes to `valid` (which asserts it is well-formed); a thrown error must be a
 * WarrenError with `code` (or an instance of `errorClass`), anything else fails the property.
 */
export function parsesOrRefuses<R>(
  parse: () => R,
  expected: { code?: string; errorClass?: new (...a: never[]) => Error },
  valid: (r: R) => void = () => {},
): void {
  let r: R
  try {
    r = parse()
  } catch (err) {
    if (expected.code !== undefined && err instanceof WarrenError && err.code === expected.code) {
      assert.ok(err.message.length > 0 && err.hint !== undefined, 'a WarrenError with a message and a hint')
      return
    }
    if (expected.errorClass !== undefined && err instanceof expected.errorClass) return
    throw new Error(
      `threw ${(err as Error)?.constructor?.name} ${(err as Error)?.message}, not ${expected.code ?? expected.errorClass?.name}`,
      { cause: err },
    )
  }
  valid(r)
}

/** Strings that stress parsers: unicode, controls, separators, and pieces of the grammar being fuzzed. */
export function nastyString(pieces: string[], maxLength = 40): fc.Arbitrary<string> {
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...pieces) },
    { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('\n', '\r', '\x00', '\x1b[31m', '\u2028', '\u202e', '%', '%zz', '%2F', '\\', '"', ' '),
    },
  )
  return fc.array(piece, { maxLength }).map((a) => a.join(''))
}
