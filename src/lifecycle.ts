/**
 * One lifecycle for the parts of a process: each part is {@link Startable}, and {@link startInOrder} starts a list of
 * them one after another and stops them in reverse order — when `stop()` is called, and also when one of them fails
 * to start (the ones already started are stopped, then the start error is rethrown).
 *
 * @example
 * ```ts
 * const parts = await startInOrder([host, part({ stop: () => forwarder.closeAll() }), directPaths])
 * await parts.stop()   // directPaths, forwarder, host
 * ```
 *
 * @packageDocumentation
 */

/** A part with a lifecycle: started once, stopped once. */
export interface Startable {
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * A part from two functions, for parts whose verbs differ (a static factory, a sync `stop()`, a `close()`, an
 * unsubscribe function); either may be left out when there is nothing to do.
 */
export function part(verbs: { start?: () => unknown; stop?: () => unknown }): Startable {
  return {
    start: async () => {
      await verbs.start?.()
    },
    stop: async () => {
      await verbs.stop?.()
    },
  }
}

/** Parts that were started together, stopped together in reverse order. */
export interface StartedParts {
  /**
   * Stops every part, last started first, each even when an earlier stop failed; rejects with the one error, or an
   * AggregateError of all of them, once every part was asked to stop. A second call returns the first one's outcome.
   */
  stop(): Promise<void>
}

/**
 * Starts `parts` in order. When one fails, the parts started before it are stopped in reverse order (their stop
 * errors are dropped) and the start error is rethrown.
 */
export async function startInOrder(parts: Iterable<Startable>): Promise<StartedParts> {
  const started: Startable[] = []
  for (const p of parts) {
    try {
      await p.start()
    } catch (err) {
      await stopInReverse(started).catch(() => {})
      throw err
    }
    started.push(p)
  }
  let stopping: Promise<void> | undefined
  return {
    stop: () => {
      stopping ??= stopInReverse(started)
      return stopping
    },
  }
}

/** Stops `parts` from the last to the first, collecting errors; rejects once all were asked. */
export async function stopInReverse(parts: readonly Startable[]): Promise<void> {
  const errors: unknown[] = []
  for (const p of [...parts].reverse()) {
    try {
      await p.stop()
    } catch (err) {
      errors.push(err)
    }
  }
  if (errors.length === 1) throw errors[0]
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} parts failed to stop`)
}
