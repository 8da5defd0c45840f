/**
 * The libp2p component logger of a node whose libp2p debug logging is off (no `DEBUG` in the environment): every
 * component, connection and stream gets one shared silent logger. libp2p's default logger builds a new logger for
 * each of them (a `debug` instance for the messages and one for errors, a silent one for traces, each a function
 * with a dozen properties of its own), about 11 KiB of heap per forwarded connection on each end, kept while the
 * connection is open. With `DEBUG` set, libp2p's default logger is used, so `DEBUG=libp2p:*` works as documented.
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ ...quietLogger(), transports: [tcp()] })
 * ```
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'

const silent: Logger = Object.assign(() => {}, {
  error: () => {},
  trace: () => {},
  enabled: false,
  newScope: (): Logger => silent,
})

const quiet: ComponentLogger = { forComponent: () => silent }

/** `{ logger }` for createLibp2p when libp2p debug logging is off, else nothing (libp2p's default). */
export function quietLogger(env: NodeJS.ProcessEnv = process.env): { logger?: ComponentLogger } {
  return env.DEBUG === undefined || env.DEBUG === '' ? { logger: quiet } : {}
}
