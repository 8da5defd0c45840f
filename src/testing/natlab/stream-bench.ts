/**
 * Bulk-transfer helpers for measuring libp2p streams: the sender writes pseudo-random bytes with back-pressure and hashes
 * them; the receiver hashes what arrives. Both return SHA-256 and timing so a test can compare the two.
 *
 * @packageDocumentation
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'

/** Protocol id the lab and benchmarks use for bulk transfers. */
export const BENCH_PROTOCOL = '/warren/bench/1.0.0'

export interface TransferReport {
  bytes: number
  sha256: string
  ms: number
  mibps: number
}

function report(bytes: number, hash: ReturnType<typeof createHash>, started: number): TransferReport {
  const ms = performance.now() - started
  return { bytes, sha256: hash.digest('hex'), ms, mibps: bytes / 1048576 / (ms / 1000) }
}

/** Writes `bytes` random bytes in 64 KiB pieces, waiting for drain, then half-closes. */
export async function sendBulk(stream: Stream, bytes: number): Promise<TransferReport> {
  const chunk = randomBytes(1024 * 1024)
  const hash = createHash('sha256')
  const started = performance.now()
  let sent = 0
  while (sent < bytes) {
    const n = Math.min(64 * 1024, bytes - sent)
    const off = sent % chunk.length
    const piece = chunk.subarray(off, off + Math.min(n, chunk.length - off))
    hash.update(piece)
    sent += piece.length
    if (!stream.send(piece)) await stream.onDrain()
  }
  await stream.close()
  return report(sent, hash, started)
}

/** Reads the stream to its end, hashing; the clock starts at the first byte. */
export async function receiveBulk(stream: Stream): Promise<TransferReport> {
  const hash = createHash('sha256')
  let bytes = 0
  let started = 0
  for await (const chunk of stream) {
    if (started === 0) started = performance.now()
    const list = chunk instanceof Uint8Array ? [chunk] : [...chunk]
    for (const piece of list) {
      hash.update(piece)
      bytes += piece.byteLength
    }
  }
  await stream.close()
  return report(bytes, hash, started === 0 ? performance.now() : started)
}
