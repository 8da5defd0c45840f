/**
 * A libp2p stream as a WHATWG byte duplex: `readable` (ReadableStream) and `writable` (WritableStream).
 *
 * - Back-pressure both ways: a full readable queue pauses the stream (Yamux stops granting window); a write waits
 *   until the stream's queue is short again ({@link waitForRoom}).
 * - Honest ends: the readable side closes only on the far side's FIN; a reset, an abort or a lost connection
 *   errors it with ERR_STREAM_ABORTED, so a cut transfer never reads as a whole one.
 * - Closing the writable sends our FIN (half-close); aborting it, or cancelling the readable, resets the stream.
 */
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { WarrenError } from '../errors.ts'
import { endedAlready } from '../p2p/stream-ended.ts'
import { waitForRoom } from '../p2p/stream-room.ts'

/** Bytes the readable side queues before it pauses the stream. */
const HIGH_WATER = 1024 * 1024

export interface ByteDuplex {
  readable: ReadableStream<Uint8Array>
  writable: WritableStream<Uint8Array>
  /** The node id at the other end. */
  remote: string
  /** Resets the stream both ways. */
  abort(reason?: Error): void
}

/** The error a stream that ended without a FIN is reported with. */
export function cutError(stream: Stream, cause?: Error): WarrenError {
  return new WarrenError(
    'ERR_STREAM_ABORTED',
    `the stream to ${remoteOf(stream)} ended before every byte was delivered${cause === undefined ? '' : `: ${cause.message}`}`,
    { hint: 'The far side reset it, its connection was lost, or a relay limit cut it. Try again.', cause },
  )
}

function remoteOf(stream: Stream): string {
  return (stream as { remotePeer?: { toString(): string } }).remotePeer?.toString() ?? 'the other side'
}

export function toByteDuplex(stream: Stream, remote = remoteOf(stream)): ByteDuplex {
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, 4 * HIGH_WATER)
  let done = false
  let ctl!: ReadableStreamDefaultController<Uint8Array>
  const finish = (err?: Error): void => {
    if (done) return
    done = true
    stream.removeEventListener('message', onMessage)
    if (err === undefined) ctl.close()
    else ctl.error(err)
  }
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    if (done) return
    ctl.enqueue(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
    if ((ctl.desiredSize ?? 1) <= 0) stream.pause()
  }
  const onEnd = (): void => {
    // a reset emits 'end' before its 'close' with the error: that is no FIN
    const s = stream.status
    if (s === 'reset' || s === 'aborted') return
    finish()
  }
  const onClose = (evt: Event & { error?: Error }): void => {
    if (evt.error !== undefined) finish(cutError(stream, evt.error))
    else if (stream.status === 'reset' || stream.status === 'aborted' || stream.remoteWriteStatus !== 'closed') {
      finish(cutError(stream))
    } else if (stream.readBufferLength === 0) finish()
    // else: the far side sent its FIN; 'end' follows once the buffered bytes were read
  }
  const readable = new ReadableStream<Uint8Array>(
    {
      start(c) {
        ctl = c
        stream.addEventListener('message', onMessage)
        stream.addEventListener('end', onEnd)
        stream.addEventListener('close', onClose)
        if (stream.readableEnded) queueMicrotask(onEnd)
        // reset or aborted before this duplex was made (while the host's answer was read): its 'close' has passed
        const error = endedAlready(stream)?.error
        if (error !== undefined) queueMicrotask(() => finish(cutError(stream, error)))
      },
      pull() {
        if (stream.readStatus === 'paused') stream.resume()
      },
      cancel(reason) {
        done = true
        stream.abort(reason instanceof Error ? reason : new Error('the reader cancelled the stream'))
      },
    },
    { highWaterMark: HIGH_WATER, size: (chunk) => chunk.byteLength },
  )
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (stream.status !== 'open') throw cutError(stream)
      if (!stream.send(chunk)) await waitForRoom(stream).catch((err: Error) => Promise.reject(cutError(stream, err)))
    },
    async close() {
      await stream.close()
    },
    abort(reason) {
      stream.abort(reason instanceof Error ? reason : new Error('the writer aborted the stream'))
    },
  })
  return {
    readable,
    writable,
    remote,
    abort: (reason) => stream.abort(reason ?? new Error('aborted by this side')),
  }
}
