/** A bounded, checksummed transfer on a libp2p service stream to a hash server (servers.ts). */
import { createHash, randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'

export interface TransferResult {
  sent: number
  sha256: string
  /** What the hash server answered: `<bytes> <sha256>`. */
  answer: string
  ms: number
}

/**
 * Sends `bytes` random bytes on a service stream to a hash server (servers.ts), half-closes and reads
 * its answer. Bounded in bytes and by `timeoutMs`.
 */
export async function transfer(stream: Stream, bytes: number, timeoutMs = 60_000): Promise<TransferResult> {
  const started = performance.now()
  const hash = createHash('sha256')
  const chunk = 64 * 1024
  const timer = setTimeout(() => stream.abort(new Error(`transfer did not finish within ${timeoutMs} ms`)), timeoutMs)
  const answer: Buffer[] = []
  const reading = (async () => {
    for await (const c of stream) answer.push(Buffer.from(c.subarray()))
  })()
  // a stream cut under the sender ends the reading with the same error: awaited below, never left unhandled
  reading.catch(() => {})
  try {
    let sent = 0
    while (sent < bytes) {
      const buf = randomBytes(Math.min(chunk, bytes - sent))
      hash.update(buf)
      sent += buf.length
      if (!stream.send(buf)) {
        await stream.onDrain({ signal: AbortSignal.timeout(timeoutMs) }).catch((e: unknown) => {
          throw e instanceof Error ? e : new Error(`the stream closed after ${sent} bytes (${stream.status})`)
        })
      }
    }
    // libp2p's close() never settles when the stream is aborted while it waits for 'drain' (its 'close' came first):
    // the reading ends with the abort's error, so race them
    await Promise.race([stream.close(), reading])
    await reading
    return {
      sent,
      sha256: hash.digest('hex'),
      answer: Buffer.concat(answer).toString(),
      ms: performance.now() - started,
    }
  } finally {
    clearTimeout(timer)
  }
}
