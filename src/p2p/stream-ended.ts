/**
 * How a stream ended, when it ended before a reader attached its listeners. A libp2p stream dispatches 'close' once;
 * a reader that attaches after an await (the host's answer, a pool's hand-over) can come too late for it and would
 * then wait for ever. Each such reader asks this first.
 */
import { type Stream, StreamAbortedError, StreamResetError } from '@libp2p/interface'

/**
 * `undefined` while the stream is open or closing; otherwise the 'close' event it dispatched already: without an
 * error for a clean close both ways, with a StreamResetError (the far side reset it) or a StreamAbortedError (this
 * side aborted it).
 */
export function endedAlready(stream: Pick<Stream, 'status'>): { error?: Error } | undefined {
  switch (stream.status) {
    case 'closed':
      return {}
    case 'reset':
      return { error: new StreamResetError('the far side reset the stream') }
    case 'aborted':
      return { error: new StreamAbortedError('the stream was aborted') }
    default:
      return undefined
  }
}
