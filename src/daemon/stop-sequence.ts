/**
 * A once-only stop for long-lived processes (the daemon, the relay): the steps run in order, each failure is logged
 * and the next step still runs, and `stopped` settles when all are done, whoever asked for the stop.
 *
 * @example
 * ```ts
 * const { stop, stopped } = stopSequence('relay', log, [
 *   ['closing the API', () => api.close()],
 *   ['stopping the relay', () => relay.stop()],
 * ])
 * ```
 */
import type { Logger } from '../log.ts'

export interface StopSequence {
  /** Starts the stop (once; later calls get the same promise). */
  stop(reason?: string): Promise<void>
  readonly stopped: Promise<void>
}

export function stopSequence(
  name: string,
  log: Logger,
  steps: ReadonlyArray<[string, () => Promise<void>]>,
): StopSequence {
  let resolve: () => void = () => {}
  const stopped = new Promise<void>((r) => {
    resolve = r
  })
  let stopping: Promise<void> | undefined
  return {
    stopped,
    stop: (reason) => {
      stopping ??= (async () => {
        log('info', `stopping the ${name}${reason ? ` (${reason})` : ''}`)
        for (const [what, run] of steps) {
          await run().catch((err: Error) => log('warn', `${what}: ${err.message}`))
        }
        log('info', `${name} stopped`)
        resolve()
      })()
      return stopping
    },
  }
}
