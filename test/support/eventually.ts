/**
 * Bounded polling for tests that wait on a condition instead of sleeping: {@link eventually} calls a check until it
 * holds and fails with the last value or error it saw when it does not hold in time.
 */

export interface EventuallyOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
  /** Pause between two checks (default 50 ms). */
  intervalMs?: number
  /** What is awaited, for the failure message (default 'condition'). */
  message?: string
}

/** What a check returns while its condition does not hold yet. */
type NotYet = undefined | null | false

/**
 * Calls `check` until it returns a value other than undefined, null or false without throwing, and resolves with
 * that value. A check that throws (e.g. a failed assertion) or returns one of those is tried again after
 * `intervalMs`; after `timeoutMs` it rejects with `message`, the last value and the last error.
 * The short form `eventually(message, check, timeoutMs)` is the same with the message first.
 */
export async function eventually<T>(check: () => T | Promise<T>, opts?: EventuallyOptions): Promise<Exclude<T, NotYet>>
export async function eventually<T>(
  message: string,
  check: () => T | Promise<T>,
  timeoutMs?: number,
): Promise<Exclude<T, NotYet>>
export async function eventually<T>(
  a: string | (() => T | Promise<T>),
  b?: EventuallyOptions | (() => T | Promise<T>),
  c?: number,
): Promise<Exclude<T, NotYet>> {
  const check = typeof a === 'string' ? (b as () => T | Promise<T>) : a
  const opts: EventuallyOptions =
    typeof a === 'string'
      ? { message: a, ...(c === undefined ? {} : { timeoutMs: c }) }
      : ((b as EventuallyOptions) ?? {})
  const timeoutMs = opts.timeoutMs ?? 10_000
  const intervalMs = opts.intervalMs ?? 50
  const deadline = Date.now() + timeoutMs
  let last: { value: unknown } | { error: unknown } | undefined
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== null && value !== false) return value as Exclude<T, NotYet>
      last = { value }
    } catch (error) {
      last = { error }
    }
    if (Date.now() >= deadline) throw timedOut(opts.message ?? 'condition', timeoutMs, last)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

function timedOut(message: string, timeoutMs: number, last: { value: unknown } | { error: unknown }): Error {
  if ('error' in last) {
    const why = last.error instanceof Error ? last.error.message : String(last.error)
    return new Error(`${message}: not within ${timeoutMs} ms; last error: ${why}`, { cause: last.error })
  }
  return new Error(`${message}: not within ${timeoutMs} ms; last value: ${describe(last.value)}`)
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}
