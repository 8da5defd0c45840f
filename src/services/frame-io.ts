/**
 * Reading one header frame off a libp2p Stream without losing the bytes that follow it: anything read past
 * the frame is pushed back with `unshift` (or, for a frame the stream already held, never taken off it), so the pipe
 * sees the stream exactly as the peer sent it.
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { endedAlready } from '../p2p/stream-ended.ts'
import { FrameError, takeFrame } from './header.ts'

export class FrameTimeoutError extends Error {
  override name = 'FrameTimeoutError'
}

/**
 * A frame whole in the bytes `stream` holds unread (libp2p's streams keep what arrived before anyone listened in
 * their `readBuffer`), taken off it; undefined when there is none yet, or when those bytes are no frame (the
 * listening path below then reports why).
 */
function bufferedFrame(stream: Stream): Uint8Array | undefined {
  const held = (stream as Stream & { readBuffer?: unknown }).readBuffer
  if (!(held instanceof Uint8ArrayList) || held.byteLength === 0) return undefined
  try {
    return takeFrame(held)
  } catch {
    return undefined
  }
}

export function readFrame(stream: Stream, timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array> {
  // a host's request usually came with the stream's first frame: no listeners, timer or copy for it then
  const early = signal?.aborted === true ? undefined : bufferedFrame(stream)
  if (early !== undefined) return Promise.resolve(early)
  // ended before this reader came (reset while it was being handed over): its 'close' will not come again
  const ended = endedAlready(stream)
  if (ended !== undefined)
    return Promise.reject(ended.error ?? new FrameError('stream closed before a complete header arrived'))
  return new Promise<Uint8Array>((resolve, reject) => {
    const buf = new Uint8ArrayList()
    const done = (err: Error | undefined, frame?: Uint8Array): void => {
      clearTimeout(timer)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('remoteCloseWrite', onEnd)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) {
        if (buf.byteLength > 0) stream.unshift(buf.subarray())
        resolve(frame!)
      } else reject(err)
    }
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      buf.append(evt.data)
      try {
        const frame = takeFrame(buf)
        if (frame !== undefined) done(undefined, frame)
      } catch (err) {
        done(err as Error)
      }
    }
    const onClose = (evt: Event & { error?: Error }): void =>
      done(evt.error ?? new FrameError('stream closed before a complete header arrived'))
    const onEnd = (): void => {
      // remote FIN: if the frame is still incomplete once buffered data was delivered, it never will be
      queueMicrotask(() => {
        try {
          const frame = takeFrame(buf)
          if (frame === undefined) done(new FrameError('stream ended before a complete header arrived'))
          else done(undefined, frame)
        } catch (err) {
          done(err as Error)
        }
      })
    }
    const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    const timer = setTimeout(() => done(new FrameTimeoutError(`no header within ${timeoutMs} ms`)), timeoutMs)
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    stream.addEventListener('remoteCloseWrite', onEnd)
    signal?.addEventListener('abort', onAbort)
  })
}
