/** A libp2p protocol handler for tests: echoes every byte of a stream back on it. */
import type { Stream } from '@libp2p/interface'
import { readAll } from '../../src/p2p/read-all.ts'

/**
 * Sends back everything `stream` carries, then closes its side once the dialer's FIN came after the last byte (a FIN
 * that arrived while multistream-select read the stream was dispatched before this handler existed).
 */
export function echoStream(stream: Stream): void {
  const ended = (): void => {
    if (stream.readableEnded && stream.readBufferLength === 0) void stream.close().catch(() => {})
  }
  stream.addEventListener('message', (evt) => {
    stream.send(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
    ended()
  })
  stream.addEventListener('end', ended)
  ended()
}

/**
 * Sends `data` on `stream` in 64 KiB sends (waiting for `drain` when told to), closes its writable end and resolves
 * with everything the far side sent back (at most `data` and one byte more), within `timeoutMs`.
 */
export async function echoed(stream: Stream, data: Uint8Array, timeoutMs = 30_000): Promise<Uint8Array> {
  const reading = readAll(stream, AbortSignal.timeout(timeoutMs), data.byteLength + 1)
  for (let off = 0; off < data.length; off += 64 * 1024) {
    if (!stream.send(data.subarray(off, off + 64 * 1024))) {
      await new Promise((resolve) => stream.addEventListener('drain', resolve, { once: true }))
    }
  }
  await stream.close()
  return reading
}
