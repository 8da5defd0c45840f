/**
 * The relay's data path: joins a circuit's two streams (the hop stream of the node that asked for the circuit and the
 * stop stream to the node it reaches) byte for byte, in place of js-libp2p's `pipe`.
 *
 * js-libp2p's relay server joins them with `pipe(src, dst, src)`, which turns `src` into a duplex twice; the second
 * copy's queue takes every message `src` receives and nobody reads it, so the relay holds everything a circuit's
 * source sends until the circuit closes (measured: 1.2 GiB of PSS after 1 GiB relayed), and its reading side never
 * pauses a stream, so a fast sender fills the relay's memory even without that.
 *
 * Here each message is sent on as it is (no copy); when the receiving stream cannot take more, the sending one is
 * paused (Yamux then stops granting window) until the receiver's queue is short again ({@link waitForRoom}), so a
 * circuit holds at most about a Yamux window each way. A FIN is passed on as a FIN, an error or reset as an abort of
 * the other stream. With `dataLimit`, both directions together may carry that many bytes; past it both streams are
 * aborted with a `TransferLimitError`, as js-libp2p names it.
 */
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { STREAM_READ_BUFFER } from '../../p2p/pipe.ts'
import { endedAlready } from '../../p2p/stream-ended.ts'
import { waitForRoom } from '../../p2p/stream-room.ts'

export interface SpliceOptions {
  /** Bytes both directions may carry together; absent: unlimited. */
  dataLimit?: number
  /** Called once, when both streams are done: without an error when they closed cleanly. */
  onEnd?(error?: Error): void
}

export interface Splice {
  /** Aborts both streams with `error`. */
  abort(error: Error): void
}

/** An error named as js-libp2p's relay names the one it aborts a circuit with at its data limit. */
export function transferLimitError(limit: number): Error {
  const err = new Error(`data limit of ${limit} bytes exceeded`)
  err.name = 'TransferLimitError'
  return err
}

const isDone = (s: Stream): boolean => s.status !== 'open' && s.status !== 'closing'

export function spliceStreams(a: Stream, b: Stream, opts: SpliceOptions = {}): Splice {
  let remaining = opts.dataLimit ?? Number.POSITIVE_INFINITY
  let ended = false
  const abort = (error: Error): void => {
    for (const s of [a, b]) if (!isDone(s)) s.abort(error)
    finish(error)
  }
  const finish = (error?: Error): void => {
    if (ended) return
    if (error === undefined && !(isDone(a) && isDone(b))) return
    ended = true
    for (const off of cleanups) off()
    opts.onEnd?.(error)
  }
  const cleanups: (() => void)[] = []

  const oneWay = (from: Stream, to: Stream): void => {
    // a paused stream keeps what still arrives within its window; past this length it would be reset
    from.maxReadBufferLength = Math.max(from.maxReadBufferLength, STREAM_READ_BUFFER)
    let waiting = false
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      const data = evt.data
      remaining -= data.byteLength
      if (remaining < 0) {
        abort(transferLimitError(opts.dataLimit!))
        return
      }
      try {
        if (to.send(data) || waiting) return
      } catch (err) {
        abort(err as Error)
        return
      }
      waiting = true
      from.pause()
      waitForRoom(to).then(
        () => {
          waiting = false
          if (from.readStatus === 'paused') from.resume()
        },
        (err: Error) => abort(err),
      )
    }
    const onEnd = (): void => {
      // a reset also emits 'end'; the 'close' handler tears down then
      if (from.status === 'reset' || from.status === 'aborted' || isDone(to)) return
      to.close().then(
        () => finish(),
        (err: Error) => abort(err),
      )
    }
    const onClose = (evt: Event & { error?: Error }): void => {
      if (evt.error !== undefined) abort(evt.error)
      else finish()
    }
    from.addEventListener('message', onMessage)
    from.addEventListener('end', onEnd)
    from.addEventListener('close', onClose)
    cleanups.push(() => {
      from.removeEventListener('message', onMessage)
      from.removeEventListener('end', onEnd)
      from.removeEventListener('close', onClose)
    })
    if (from.readStatus === 'paused') from.resume()
  }
  oneWay(a, b)
  oneWay(b, a)
  // a stream reset or aborted while the circuit was being opened (its node gave up while the relay dialled the
  // other): its 'close' came and went already, so the other stream is aborted now rather than left open until a
  // write to the dead one fails (a clean end is still delivered: the stream dispatches its 'end' once its buffered
  // bytes are read)
  for (const s of [a, b]) {
    const error = endedAlready(s)?.error
    if (error !== undefined) abort(error)
  }
  return { abort }
}
