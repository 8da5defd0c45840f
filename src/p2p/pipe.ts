/**
 * Joins a libp2p Stream and a Node duplex (a TCP socket, or stdin/stdout) byte for byte.
 *
 * - Half-close: a FIN on one side ends only that direction (`socket.end()` ↔ `stream.close()`).
 * - Back-pressure: a full socket pauses the stream (Yamux then stops granting window), a full stream pauses
 *   the socket, so a slow reader never makes memory grow beyond the window and the socket buffers.
 * - Teardown: an error or reset on either side destroys the other; the promise settles once both are done.
 *   A TCP socket is closed with an RST, so the client application sees a reset instead of a short but clean end;
 *   any other duplex is destroyed with the error (a framed API socket passes it on to `warren connect`).
 * - Honesty: a stream ends cleanly only after the far side's FIN; a stream whose connection died is aborted by the
 *   muxer (src/p2p/patches/honest-streams.ts) and ends here with an error, never as if it were complete.
 *
 * Sockets must be created with `allowHalfOpen: true`, or Node closes the write side when the read side ends.
 */
import type { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { endedAlready } from './stream-ended.ts'
import { waitForRoom } from './stream-room.ts'

export interface PipeResult {
  /** Bytes from the stream written to the local side. */
  bytesIn: number
  /** Bytes from the local side sent on the stream. */
  bytesOut: number
  /** How long the pipe ran, ms. */
  durationMs: number
  /** Set when the pipe ended by an error or reset rather than two clean FINs. */
  error?: Error
}

/** One line for a log: who, bytes each way, duration, and the reason when the pipe ended abnormally. */
export function describePipeEnd(what: string, res: PipeResult): string {
  const base = `${what}: ${res.bytesIn} bytes in, ${res.bytesOut} out, ${res.durationMs} ms`
  return res.error === undefined ? base : `${base}, ended abnormally: ${reasonOf(res.error)}`
}

/** The cause of an abnormal end, in words a user can act on. */
export function reasonOf(err: Error): string {
  const e = err as Error & { code?: string; name: string }
  if (e.name === 'StreamResetError') return 'the far side reset the stream'
  return e.message || e.name
}

/** Read buffer allowed on a paused stream: must exceed the Yamux window or a pause turns into a reset. */
export const STREAM_READ_BUFFER = 8 * 1024 * 1024

function asBuffer(data: Uint8Array | Uint8ArrayList): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray()
}

/**
 * An abortive close: a TCP socket gets an RST (so a reset travels on as a reset), anything else is destroyed.
 *
 * A socket whose shutdown is under way (`end()` called, `finish` not yet emitted) is destroyed instead: libuv refuses
 * an RST there (`uv_tcp_close_reset` returns EINVAL while `uv_shutdown` is pending), and Node 24 then marks the
 * handle closing without closing it, so its descriptor leaks and the process spins in its exit clean-up for ever
 * (UPSTREAM.md). @libp2p/tcp's own reset does the same for the same reason.
 */
export function abortLocal(local: Duplex, error: Error): void {
  local.on('error', () => {}) // the reset itself may report EINVAL/EPIPE after we stopped listening
  const reset = (local as Duplex & { resetAndDestroy?: () => void }).resetAndDestroy
  if (typeof reset === 'function' && !local.destroyed && !(local.writableEnded && !local.writableFinished)) {
    try {
      reset.call(local)
      return
    } catch {
      // not a TCP socket after all: fall through
    }
  }
  local.destroy(error)
}

export interface PipeOptions {
  /**
   * Bytes from the local side go out at once, bytes from the stream are read only once this resolves (the far
   * side's status answer has been taken off the stream); a rejection ends the pipe with that error.
   */
  ready?: Promise<unknown>
  /**
   * Bytes the local side sent before it was handed over, which a reader of its handshake took off the socket (the
   * bytes after a CONNECT head): sent first. Putting them back with `unshift` instead fails once the socket has
   * emitted 'end', as it has when they came with the client's FIN.
   */
  first?: Uint8Array
}

export function pipeStream(stream: Stream, local: Duplex, opts: PipeOptions = {}): Promise<PipeResult> {
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, STREAM_READ_BUFFER)
  const started = Date.now()
  const result: PipeResult = { bytesIn: 0, bytesOut: 0, durationMs: 0 }
  return new Promise<PipeResult>((resolve) => {
    let inDone = false // stream → local finished (local.end() called)
    let outDone = false // local → stream finished (stream.close() done)
    let settled = false

    const cleanup = (): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onStreamEnd)
      stream.removeEventListener('close', onStreamClose)
      local.off('data', onData)
      local.off('end', onLocalEnd)
      local.off('drain', onLocalDrain)
      local.off('error', onLocalError)
      local.off('close', onLocalClose)
    }
    const finish = (error?: Error): void => {
      if (settled) return
      settled = true
      if (error !== undefined) result.error = error
      result.durationMs = Date.now() - started
      cleanup()
      if (error !== undefined) {
        if (stream.status === 'open' || stream.status === 'closing') stream.abort(error)
        abortLocal(local, error)
      }
      resolve(result)
    }
    const maybeDone = (): void => {
      if (inDone && outDone && !settled) {
        settled = true
        result.durationMs = Date.now() - started
        cleanup()
        resolve(result)
      }
    }

    // stream → local
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      const buf = asBuffer(evt.data)
      result.bytesIn += buf.byteLength
      if (!local.write(buf)) stream.pause()
      // bytes put back (unshift) after the stream's 'end' was dispatched: that end takes effect once they are out
      if (stream.readableEnded && stream.readBufferLength === 0) onStreamEnd()
    }
    const onLocalDrain = (): void => {
      if (stream.readStatus === 'paused') stream.resume()
    }
    const onStreamEnd = (): void => {
      // a reset also emits 'end': that is not a FIN, and the 'close' handler tears down instead
      if (inDone || stream.status === 'reset' || stream.status === 'aborted') return
      inDone = true
      local.end()
      maybeDone()
    }
    const onStreamClose = (evt: Event & { error?: Error }): void => {
      if (evt.error !== undefined) finish(evt.error)
      else {
        outDone = true
        // 'close' can come while a paused stream still holds unread bytes: those must reach the local side
        // first, and the stream's own 'end' follows once they have been delivered
        if (stream.readBufferLength === 0) onStreamEnd()
        else maybeDone()
      }
    }

    // local → stream
    const onData = (chunk: Buffer): void => {
      result.bytesOut += chunk.byteLength
      try {
        if (!stream.send(chunk)) {
          local.pause()
          waitForRoom(stream).then(
            () => local.resume(),
            (err: Error) => finish(err),
          )
        }
      } catch (err) {
        finish(err as Error)
      }
    }
    let localEnded = false
    const onLocalEnd = (): void => {
      localEnded = true
      stream.close().then(
        () => {
          outDone = true
          maybeDone()
        },
        (err: Error) => finish(err),
      )
    }
    const onLocalError = (err: Error): void => finish(err)
    const onLocalClose = (): void => {
      // gone before a clean FIN both ways (destroyed, reset): tear the stream down too
      if (!localEnded || !inDone) finish(new Error('local connection closed before the stream ended'))
    }

    const readStream = (): void => {
      if (settled) return
      stream.addEventListener('message', onMessage)
      stream.addEventListener('end', onStreamEnd)
      stream.addEventListener('close', onStreamClose)
      if (stream.readStatus === 'paused') stream.resume()
      // a stream can have dispatched 'end' while a reader before this one still held bytes it then put back (a
      // header reader, multistream-select): those are delivered first, and onMessage ends the local side after them
      if (stream.readableEnded && stream.readBufferLength === 0) onStreamEnd()
      // closed both ways, reset or aborted while the answer was awaited (a service that resets its connection at
      // once): its 'close' came and went already, and nothing else will come
      const ended = endedAlready(stream)
      if (ended?.error !== undefined) finish(ended.error)
      else if (ended !== undefined) onStreamClose(new Event('close'))
    }
    // gone while the stream was being opened (a client that reset its connection while the node was being
    // dialled): its 'close' came and went already, and the stream must not stay open for ever on both nodes
    if (local.destroyed) {
      finish(new Error('local connection closed before the stream was set up'))
      return
    }
    if (opts.first !== undefined && opts.first.byteLength > 0) onData(opts.first as Buffer)
    // bytes the local side already holds leave now, with whatever this turn sends before them (a dialer's request
    // header): a 'data' listener alone would hand them over a tick later, after the turn's writes have gone
    if (!local.readableFlowing && !settled) {
      for (let chunk = local.read() as Buffer | null; chunk !== null; chunk = local.read() as Buffer | null) {
        onData(chunk)
        if (settled || local.isPaused()) break
      }
    }
    local.on('data', onData)
    local.on('end', onLocalEnd)
    local.on('drain', onLocalDrain)
    local.on('error', onLocalError)
    local.on('close', onLocalClose)
    if (opts.ready === undefined) readStream()
    else opts.ready.then(readStream, (err: Error) => finish(err))
    // a client that half-closed before the stream was open (`printf … | nc -N`): its 'end' came and went already
    if (local.readableEnded) onLocalEnd()
  })
}
