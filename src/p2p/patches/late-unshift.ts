/**
 * A stream that lets a reader put bytes back after the far side's FIN (UPSTREAM.md row 15, the listener's half).
 *
 * @libp2p/utils 7.4.1: when a stream's buffered bytes are handed to a reader and the far side has already closed its
 * write side, the stream closes its read side at once (`dispatchReadBuffer`), before the reader could look at them.
 * multistream-select's `handle()` reads the protocol lines that way and then puts the bytes after them back
 * (`unshift`), which a closed read side refuses (`StreamStateError: Cannot push data onto a stream that is closed`):
 * libp2p resets the stream. That happens to every stream whose protocol lines, bytes and FIN all arrived before the
 * node took it up, such as the first streams of a new connection from a dialer that selects its protocol lazily
 * (go-libp2p's lazy select, Kubo's `ipfs p2p` streams) when its client half-closes at once.
 *
 * Here `unshift` on such a stream (read side closed only because the FIN was in, the stream still open) opens the
 * read side again and takes the bytes back; once they have been handed out, the read side closes again and the
 * stream dispatches `remoteCloseWrite` and `end` once more, so a reader that started after the first ones still
 * sees the end of the stream.
 *
 * @example
 * ```ts
 * takeBackAfterEnd(stream) // on each stream a muxer makes (src/p2p/patches/honest-streams.ts)
 * ```
 */
import type { Uint8ArrayList } from 'uint8arraylist'

/** The parts of a libp2p stream touched here. */
interface PatchableStream {
  status: string
  readStatus: string
  remoteWriteStatus: string
  readBufferLength: number
  unshift(data: Uint8Array | Uint8ArrayList): void
  dispatchReadBuffer(): void
  safeDispatchEvent(type: string): void
}

const PATCHED = Symbol.for('warren.takeBackAfterEnd')

/** Installs the fix on one stream; idempotent; false when the stream lacks the hooks. */
export function takeBackAfterEnd(stream: unknown): boolean {
  const s = stream as PatchableStream & { [PATCHED]?: true }
  if (s[PATCHED] === true) return true
  if (
    typeof s.unshift !== 'function' ||
    typeof s.dispatchReadBuffer !== 'function' ||
    typeof s.safeDispatchEvent !== 'function'
  ) {
    return false
  }
  const unshift = s.unshift.bind(s)
  const dispatchReadBuffer = s.dispatchReadBuffer.bind(s)
  let reopened = false
  s.unshift = (data) => {
    if (data.byteLength > 0 && s.status === 'open' && s.readStatus === 'closed' && s.remoteWriteStatus === 'closed') {
      s.readStatus = 'readable'
      reopened = true
    }
    unshift(data)
  }
  s.dispatchReadBuffer = () => {
    dispatchReadBuffer()
    if (reopened && s.readStatus === 'closed') {
      // the bytes taken back are out and the read side closed again: the end, for readers that came after the first
      reopened = false
      s.safeDispatchEvent('remoteCloseWrite')
      s.safeDispatchEvent('end')
    }
  }
  s[PATCHED] = true
  return true
}
