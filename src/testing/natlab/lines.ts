/**
 * JSON-lines messaging between a lab test and the processes it runs in namespaces (stdin/stdout of the child).
 *
 * @packageDocumentation
 */

import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { WarrenError } from '../../errors.ts'

export type LineMessage = { type: string } & Record<string, unknown>

export interface LineChannel {
  send(msg: LineMessage): void
  /**
   * Resolves with the next message of this type, or of any of these types (earlier ones of other types stay queued).
   * One waiter for several types: waiting for `['leg', 'error']` leaves nothing behind that would swallow a later
   * `error`, as two racing waits would.
   */
  next(type: string | readonly string[], timeoutMs: number): Promise<LineMessage>
  /** Messages received so far, for diagnostics. */
  readonly log: readonly LineMessage[]
}

/** Wraps a readable/writable pair; lines that are not JSON objects are kept in `log` as `{type: 'text', text}`. */
export function lineChannel(input: Readable, output: Writable, name = 'peer'): LineChannel {
  const queue: LineMessage[] = []
  const log: LineMessage[] = []
  const waiters: Array<{ types: readonly string[]; resolve: (m: LineMessage) => void }> = []
  let ended = false
  const failWaiters = new Set<(err: Error) => void>()
  // A child that already exited closes its stdin; a late message to it is dropped, not an unhandled EPIPE.
  output.on('error', () => undefined)
  const rl = createInterface({ input })
  rl.on('line', (line) => {
    let msg: LineMessage
    try {
      const parsed = JSON.parse(line) as unknown
      msg =
        parsed !== null && typeof parsed === 'object' && typeof (parsed as LineMessage).type === 'string'
          ? (parsed as LineMessage)
          : { type: 'text', text: line }
    } catch {
      msg = { type: 'text', text: line }
    }
    log.push(msg)
    const i = waiters.findIndex((w) => w.types.includes(msg.type))
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(msg)
    else queue.push(msg)
  })
  rl.on('close', () => {
    ended = true
    for (const f of failWaiters) f(new Error(`${name} closed its output`))
  })
  return {
    log,
    send: (msg) => {
      if (output.writable) output.write(`${JSON.stringify(msg)}\n`)
    },
    next: (wanted, timeoutMs) => {
      const types: readonly string[] = typeof wanted === 'string' ? [wanted] : wanted
      const type = types.join("' or '")
      const i = queue.findIndex((m) => types.includes(m.type))
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]!)
      return new Promise((resolve, reject) => {
        const waiter = {
          types,
          resolve: (m: LineMessage) => {
            clearTimeout(t)
            failWaiters.delete(onEnd)
            resolve(m)
          },
        }
        const onEnd = (err: Error): void => {
          clearTimeout(t)
          reject(
            new WarrenError('ERR_LAB', `${name} ended before sending '${type}': ${err.message}`, {
              hint: 'Look at the process output in the error details.',
              details: { log },
            }),
          )
        }
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          failWaiters.delete(onEnd)
          reject(
            new WarrenError('ERR_TIMEOUT', `${name} sent no '${type}' message within ${timeoutMs} ms`, {
              hint: 'Look at the process output in the error details.',
              details: { log },
            }),
          )
        }, timeoutMs)
        waiters.push(waiter)
        if (ended) onEnd(new Error('output already closed'))
        else failWaiters.add(onEnd)
      })
    },
  }
}

/**
 * The channel a lab child process uses to talk to its parent (stdin/stdout), with a hard deadline after which the child
 * reports an error and exits, so no child outlives a test. Call `done()` when finished to clear the deadline.
 */
export function parentChannel(name: string, deadlineMs = 120_000): { chan: LineChannel; done: () => void } {
  const chan = lineChannel(process.stdin, process.stdout, 'parent')
  const fatal = setTimeout(() => {
    chan.send({ type: 'error', message: `${name} gave up after ${deadlineMs} ms` })
    process.exit(3)
  }, deadlineMs)
  return { chan, done: () => clearTimeout(fatal) }
}

/**
 * Runs a lab child's `main`: a failure goes to the parent as an `error` message (with the stack), then `cleanup`
 * runs, the deadline of {@link parentChannel} is cleared, and the process exits.
 */
export function runChild(
  channel: { chan: LineChannel; done: () => void },
  main: () => Promise<void>,
  cleanup: () => Promise<void> | void = () => {},
): void {
  main()
    .catch((err: unknown) =>
      channel.chan.send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    )
    .finally(async () => {
      channel.done()
      await Promise.resolve()
        .then(cleanup)
        .catch(() => undefined)
      process.exit(0)
    })
}

/** Waits up to `ms` for a child to exit, then kills it; resolves once it is gone. */
export async function reap(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const t = setTimeout(() => child.kill('SIGKILL'), ms)
  await exited
  clearTimeout(t)
}
