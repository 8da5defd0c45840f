/**
 * Streams that end honestly and never overflow: two workarounds for @chainsafe/libp2p-yamux 8.0.1 on
 * @libp2p/utils 7.4.1, installed per muxer by {@link honestStreams} (see UPSTREAM.md).
 *
 * 1. **A pause made while a resume delivers buffered bytes is kept.** `AbstractMessageStream.resume()` sets the
 *    stream readable, dispatches the bytes buffered while it was paused, then calls `sendResume()`. A consumer that
 *    cannot take those bytes (a socket whose `write()` returns false) pauses the stream again inside that dispatch,
 *    and Yamux's `sendResume()` then overwrites the pause: its state goes back to Established and it grants a
 *    whole window. From then on every data frame that arrives is granted again at once while the stream's read
 *    status is still "paused", so the sender never stops and the read buffer grows until libp2p aborts the stream
 *    ("Read buffer length … exceeded limit"). That is how a reader slower than the network got its connection reset
 *    mid-transfer. The fix: `sendResume()` does nothing when the stream is paused again by the time it runs; the
 *    next `resume()` grants the credit. A paused stream then holds at most the window it granted.
 *
 * 2. **A connection that dies resets the streams it still carries.** When a muxer's transport closes without an
 *    error (a relay that went away, a peer's GoAway as its daemon stops, the TCP connection's FIN), libp2p ends every
 *    open stream with a clean 'end' and 'close', exactly as if the far side had sent all its bytes and a FIN. A
 *    service then takes a cut upload for a whole one, a client a cut download. Here a transport close aborts each
 *    stream that has not finished both ways with {@link ConnectionLostError}, so the application sees an error
 *    (and a pipe resets its socket). Streams closed both ways are already gone from the muxer's list.
 *
 * @example
 * ```ts
 * createLibp2p({ streamMuxers: [honest(yamux())] })
 * ```
 */
import type { StreamMuxerFactory } from '@libp2p/interface'
import { takeBackAfterEnd } from './late-unshift.ts'
import { patchMissed } from './status.ts'

/** The error a stream is aborted with when its connection closed before the stream ended both ways. */
export class ConnectionLostError extends Error {
  override name = 'ConnectionLostError'
  readonly code = 'ERR_CONNECTION_LOST'
  constructor(message = 'the connection closed before the stream ended') {
    super(message)
  }
}

/** The parts of a Yamux stream touched here. */
interface PatchableStream {
  readStatus: string
  status: string
  sendResume?: () => void
  abort(err: Error): void
}

/** The parts of a Yamux muxer touched here. */
interface PatchableMuxer {
  streams: PatchableStream[]
  _newStream?: (...args: unknown[]) => PatchableStream
  onTransportClosed?: (err?: Error) => void
}

const PATCHED = Symbol.for('warren.honestStream')

/** Keeps a pause made while `resume()` dispatched the buffered bytes (fix 1); idempotent; false without the hook. */
export function keepPauseOnResume(stream: unknown): boolean {
  const s = stream as PatchableStream & { [PATCHED]?: true }
  if (s[PATCHED] === true) return true
  if (typeof s.sendResume !== 'function') return false
  const sendResume = s.sendResume.bind(s)
  s.sendResume = () => {
    if (s.readStatus === 'paused') return
    sendResume()
  }
  s[PATCHED] = true
  return true
}

/** Installs both fixes on one muxer: on its streams as they are made, and on its transport's close. */
export function honestMuxer(muxer: unknown): void {
  const m = muxer as PatchableMuxer
  if (typeof m._newStream === 'function') {
    const newStream = m._newStream.bind(m)
    m._newStream = (...args) => {
      const stream = newStream(...args)
      if (!keepPauseOnResume(stream)) patchMissed('keepPauseOnResume', 'a Yamux stream has no `sendResume`')
      if (!takeBackAfterEnd(stream))
        patchMissed('takeBackAfterEnd', 'a Yamux stream has no `unshift`/`dispatchReadBuffer`')
      return stream
    }
  } else {
    patchMissed('keepPauseOnResume', 'the muxer has no `_newStream`')
  }
  if (typeof m.onTransportClosed === 'function') {
    const onTransportClosed = m.onTransportClosed.bind(m)
    m.onTransportClosed = (err) => {
      if (err === undefined) {
        // streams still listed have not ended both ways: they did not end, their connection did
        for (const s of [...m.streams]) {
          if (s.status === 'open' || s.status === 'closing') s.abort(new ConnectionLostError())
        }
      }
      onTransportClosed(err)
    }
  } else {
    patchMissed('honestMuxer', 'the muxer has no `onTransportClosed`')
  }
}

/** Wraps a stream muxer factory (`yamux()`) so that each of its muxers gets {@link honestMuxer}. */
export function honest<C>(factory: (components: C) => StreamMuxerFactory): (components: C) => StreamMuxerFactory {
  return (components) => {
    const muxers = factory(components)
    const create = muxers.createStreamMuxer.bind(muxers)
    muxers.createStreamMuxer = (maConn) => {
      const muxer = create(maConn)
      honestMuxer(muxer)
      return muxer
    }
    return muxers
  }
}
