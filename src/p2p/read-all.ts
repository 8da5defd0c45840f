/**
 * Reads a stream to its end, for small request/answer protocols (the relay's info and admits protocols): at most
 * `max` bytes, else it throws; `signal` aborts the stream (an answer that never ends cannot hold the reader).
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'

export async function readAll(stream: Stream, signal: AbortSignal, max: number): Promise<Uint8Array> {
  const buf = new Uint8ArrayList()
  const onAbort = (): void => stream.abort(new Error('timed out'))
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const chunk of stream) {
      buf.append(chunk)
      if (buf.byteLength > max) throw new Error(`message longer than ${max} bytes`)
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  return buf.subarray()
}
