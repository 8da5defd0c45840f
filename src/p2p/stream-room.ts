/**
 * Back-pressure for libp2p 3 streams.
 *
 * `stream.send()` returning false and `stream.onDrain()` are not enough on their own: Yamux dispatches 'drain' on
 * every window update, while the stream's write queue may still hold megabytes; a writer that resumes on each
 * 'drain' adds a chunk per update and the queue grows without bound (measured: 490 MiB queued in a 1 GiB upload).
 * {@link waitForRoom} resumes only once the queue is short again.
 */
import type { Stream } from '@libp2p/interface'

/** Bytes left queued in the stream when a writer may go on. */
export const LOW_WATER = 256 * 1024

/** Resolves when the stream accepts data and its write queue holds at most `lowWater` bytes; rejects if it closes. */
export function waitForRoom(stream: Stream, lowWater = LOW_WATER): Promise<void> {
  const ready = (): boolean => !stream.writableNeedsDrain && stream.writeBufferLength <= lowWater
  if (ready()) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.removeEventListener('drain', check)
      stream.removeEventListener('idle', check)
      stream.removeEventListener('close', onClose)
    }
    // the stream's own 'drain' listener clears writableNeedsDrain and flushes the queue in a microtask: look after it
    const check = (): void =>
      queueMicrotask(() => {
        if (ready()) {
          cleanup()
          resolve()
        }
      })
    const onClose = (evt: Event & { error?: Error }): void => {
      cleanup()
      reject(evt.error ?? new Error(`stream closed while waiting to write (${stream.status})`))
    }
    stream.addEventListener('drain', check)
    stream.addEventListener('idle', check)
    stream.addEventListener('close', onClose)
  })
}
