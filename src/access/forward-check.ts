/**
 * The service check of a forward: one service stream opened to `<node>/<service>` and, once the host answered OK,
 * closed again at once (a FIN; a reset only if the far side has not closed within a grace period, or sends more than
 * a greeting). The service protocol has no lighter probe: the host answers OK only after its TCP connect to the
 * target, so the target sees one connection that ends without data.
 *
 * A refusal (ERR_UNKNOWN_SERVICE, ERR_NOT_AUTHORIZED) means the forward cannot work as asked. Anything else (the node
 * cannot be reached now, its target is down, it is at its limit) may change by the time a client connects.
 *
 * @example
 * ```ts
 * await checkService((n, s, o) => node.openService(n, s, o), 'laptop', 'db', { timeoutMs: 20_000 })
 * ```
 */
import type { Stream } from '@libp2p/interface'
import { type ErrorCode, isWarrenError, toWarrenError, WarrenError } from '../errors.ts'

export type OpenServiceFn = (
  node: string,
  service: string,
  opts: { addrs?: string[]; signal: AbortSignal },
) => Promise<Stream>

/** Codes that say the forward cannot work as asked: `warren forward` refuses to add it. */
export const REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['ERR_UNKNOWN_SERVICE', 'ERR_NOT_AUTHORIZED'])

export function isRefusal(err: unknown): boolean {
  return isWarrenError(err) && REFUSALS.has(err.code)
}

export interface CheckOptions {
  addrs?: string[]
  /** The whole check: lookup, dial and the host's answer, ms. */
  timeoutMs: number
  /** How long the closed check stream may wait for the far side's FIN before it is reset, ms (default 2 s). */
  graceMs?: number
}

/** Resolves once the service answered OK; rejects with the WarrenError that a client connection would meet. */
export async function checkService(
  open: OpenServiceFn,
  node: string,
  service: string,
  opts: CheckOptions,
): Promise<void> {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(new Error('check timed out')), opts.timeoutMs)
  try {
    const stream = await open(node, service, { ...(opts.addrs ? { addrs: opts.addrs } : {}), signal: abort.signal })
    release(stream, opts.graceMs ?? 2_000)
  } catch (err) {
    if (abort.signal.aborted && !isRefusal(err)) {
      throw new WarrenError('ERR_TIMEOUT', `no answer from ${node} for "${service}" within ${opts.timeoutMs} ms`, {
        hint: 'Check that the node runs and is reachable (`warren ping <node>`).',
        cause: err,
      })
    }
    throw toWarrenError(err)
  } finally {
    clearTimeout(timer)
  }
}

/** What a check stream takes from the target (a greeting, a banner) before it resets rather than waits for the end. */
export const CHECK_READ_LIMIT = 64 * 1024

/**
 * Closes a check stream: our FIN; what the target sends first (a banner) is dropped; a reset after `graceMs`, or
 * once the target sent more than {@link CHECK_READ_LIMIT} (a service that streams on connect would not stop).
 */
function release(stream: Stream, graceMs: number): void {
  const timer = setTimeout(() => stream.abort(new Error('the service check ended its stream')), graceMs)
  timer.unref()
  stream.addEventListener('close', () => clearTimeout(timer), { once: true })
  let read = 0
  stream.addEventListener('message', (evt) => {
    read += evt.data.byteLength
    if (read > CHECK_READ_LIMIT) stream.abort(new Error('the service check ended its stream'))
  })
  stream.close().catch((err: Error) => stream.abort(err))
}
