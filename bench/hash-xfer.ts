/**
 * Transfers checked by sha256 end to end, for bench/relay.ts: a service that hashes what it is sent or sends a known
 * pattern, and the client side of both directions.
 *
 * request = mode (1 byte: `U` upload or `D` download) | length (u64 big-endian)
 * - `U`: the client sends `length` bytes; the service answers their sha256 (32 bytes) and closes.
 * - `D`: the service sends `length` bytes of {@link CHUNK} repeated and closes; the client hashes them.
 */
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type Server } from 'node:net'

const CHUNK = randomBytes(256 * 1024)
const TRANSFER_TIMEOUT = 300_000

/**
 * The sha256 service: `U` + u64 length: reads that many bytes and answers their sha256; `D` + u64 length: sends that
 * many bytes of {@link CHUNK} repeated and closes.
 */
export async function hashServer(): Promise<Server> {
  const server = createServer((sock) => {
    let head = Buffer.alloc(0)
    let left = -1
    const hash = createHash('sha256')
    sock.on('data', (d: Buffer) => {
      if (left < 0) {
        head = Buffer.concat([head, d])
        if (head.length < 9) return
        const n = Number(head.readBigUInt64BE(1))
        if (head[0] === 0x44) {
          sock.removeAllListeners('data')
          void sendPattern(sock, n).then(() => sock.end())
          return
        }
        left = n
        d = head.subarray(9)
      }
      hash.update(d)
      left -= d.length
      if (left === 0) sock.end(hash.digest())
    })
    sock.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return server
}

async function sendPattern(sock: NodeJS.WritableStream, n: number): Promise<void> {
  for (let sent = 0; sent < n; sent += CHUNK.length) {
    const piece = n - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, n - sent)
    if (!sock.write(piece)) await new Promise((r) => sock.once('drain', r))
  }
}

export function patternHash(n: number): string {
  const h = createHash('sha256')
  for (let done = 0; done < n; done += CHUNK.length) h.update(CHUNK.subarray(0, Math.min(CHUNK.length, n - done)))
  return h.digest('hex')
}

/** One transfer through host:port, checked by sha256; returns ms. */
export function transfer(port: number, mode: 'U' | 'D', n: number, expect: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const sock = connect(port, '127.0.0.1')
    const timer = setTimeout(() => sock.destroy(new Error(`transfer ${mode} ${n} timed out`)), TRANSFER_TIMEOUT)
    const head = Buffer.alloc(9)
    head[0] = mode.charCodeAt(0)
    head.writeBigUInt64BE(BigInt(n), 1)
    const h = createHash('sha256')
    const answer: Buffer[] = []
    let got = 0
    sock.on('data', (d: Buffer) => {
      got += d.length
      if (mode === 'D') h.update(d)
      else answer.push(d)
    })
    sock.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    sock.on('end', () => {
      clearTimeout(timer)
      const digest = mode === 'D' ? h.digest('hex') : Buffer.concat(answer).toString('hex')
      if (mode === 'D' && got !== n) reject(new Error(`downloaded ${got} of ${n} bytes`))
      else if (digest !== expect) reject(new Error(`sha256 mismatch (${mode} ${n}): ${digest} != ${expect}`))
      else resolve(performance.now() - started)
      sock.end()
    })
    sock.write(head)
    if (mode === 'U') void sendPattern(sock, n)
  })
}
