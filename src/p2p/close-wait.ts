/**
 * The graceful close of a MultiaddrConnection's transport (a TCP socket, a UDX stream): start the close, wait for
 * 'close', and destroy at once if the caller's signal aborts meanwhile.
 *
 * @packageDocumentation
 */
import type { AbortOptions } from '@libp2p/interface'

/** What both a `net.Socket` and a udx-native stream offer. */
export interface Closable {
  readonly destroyed: boolean
  once(event: 'close', listener: () => void): unknown
  destroy(): void
}

/** Runs `begin` (end / destroySoon) on `target` and resolves on its 'close'; an abort destroys it and rejects. */
export async function closeAndWait(target: Closable, begin: () => void, options?: AbortOptions): Promise<void> {
  if (target.destroyed) return
  const closed = new Promise<void>((resolve) => target.once('close', () => resolve()))
  begin()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      target.destroy()
      reject(options?.signal?.reason ?? new Error('aborted'))
    }
    options?.signal?.addEventListener('abort', onAbort, { once: true })
    closed.then(() => {
      options?.signal?.removeEventListener('abort', onAbort)
      resolve()
    })
  })
}
