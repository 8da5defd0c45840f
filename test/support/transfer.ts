/**
 * Transfers for data-path tests: a deterministic byte source, readers that read slowly or in bursts, and servers
 * that send or take a known number of bytes. Every transfer is checked by SHA-256 of the whole stream and by how
 * it ended (clean end or error), never by timing.
 */

import assert from 'node:assert/strict'
import { createCipheriv, createHash } from 'node:crypto'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'

export const MiB = 1024 * 1024

/** A deterministic pseudo-random byte stream (AES-256-CTR over zeros), generated chunk by chunk. */
export class ByteSource {
  readonly #cipher
  #left: number
  readonly size: number
  constructor(size: number, seed = 1) {
    this.size = size
    const key = Buffer.alloc(32, seed & 0xff)
    this.#cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
    this.#left = size
  }
  /** The next chunk, or null at the end. */
  next(max = 256 * 1024): Buffer | null {
    if (this.#left <= 0) return null
    const n = Math.min(max, this.#left)
    this.#left -= n
    return this.#cipher.update(Buffer.alloc(n))
  }
  /** SHA-256 (hex) of all `size` bytes. */
  static digest(size: number, seed = 1): string {
    const src = new ByteSource(size, seed)
    const h = createHash('sha256')
    for (let c = src.next(MiB); c !== null; c = src.next(MiB)) h.update(c)
    return h.digest('hex')
  }
}

/** Writes a {@link ByteSource} to `out` with back-pressure; `end` (default true) ends `out` afterwards. */
export function pump(src: ByteSource, out: Writable, end = true): Promise<void> {
  return new Promise((resolve, reject) => {
    const go = (): void => {
      for (let c = src.next(); c !== null; c = src.next()) {
        if (!out.write(c)) {
          out.once('drain', go)
          return
        }
      }
      if (end) out.end(resolve)
      else resolve()
    }
    out.once('error', reject)
    go()
  })
}

/**
 * Writes a {@link ByteSource} to `out` at `bytesPerSec` (64 KiB at a time, on schedule, with back-pressure), then
 * ends it: a producer slower than the network, so the path between it and a fast reader holds few bytes at a time.
 */
export function pumpAt(src: ByteSource, out: Writable, bytesPerSec: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now()
    let sent = 0
    let failed = false
    const go = (): void => {
      while (!failed && !out.destroyed) {
        const due = (sent / bytesPerSec) * 1000 - (Date.now() - start)
        if (due > 5) {
          setTimeout(go, due)
          return
        }
        const c = src.next(64 * 1024)
        if (c === null) {
          out.end(resolve)
          return
        }
        sent += c.length
        if (!out.write(c)) {
          out.once('drain', go)
          return
        }
      }
    }
    out.once('error', (err) => {
      failed = true
      reject(err)
    })
    go()
  })
}

/** How a reader reads: as fast as it can, at a rate in bytes/s, or in bursts (read `onMs`, then stop `offMs`). */
export type ReadPace =
  | { kind: 'fast' }
  | { kind: 'rate'; bytesPerSec: number }
  | { kind: 'bursts'; onMs: number; offMs: number }

export const pace = {
  fast: { kind: 'fast' } as ReadPace,
  mibps: (n: number): ReadPace => ({ kind: 'rate', bytesPerSec: n * MiB }),
  bursts: (onMs = 150, offMs = 350): ReadPace => ({ kind: 'bursts', onMs, offMs }),
}

export interface ReadResult {
  bytes: number
  sha256: string
  /** How the stream ended: 'end' after a clean end of stream, or the error's message. */
  ending: 'end' | string
}

/** Reads `input` to its end at `p`, hashing what arrives; resolves (never rejects) with how it ended. */
export function readPaced(input: Readable, p: ReadPace): Promise<ReadResult> {
  return new Promise((resolve) => {
    const h = createHash('sha256')
    let bytes = 0
    let done = false
    const timers = new Set<NodeJS.Timeout>()
    const later = (ms: number, f: () => void): void => {
      const t = setTimeout(() => {
        timers.delete(t)
        f()
      }, ms)
      timers.add(t)
    }
    const finish = (ending: string): void => {
      if (done) return
      done = true
      for (const t of timers) clearTimeout(t)
      resolve({ bytes, sha256: h.digest('hex'), ending })
    }
    const start = Date.now()
    let burstOn = true
    if (p.kind === 'bursts') {
      const flip = (): void => {
        if (done) return
        burstOn = !burstOn
        if (burstOn) input.resume()
        else input.pause()
        later(burstOn ? p.onMs : p.offMs, flip)
      }
      later(p.onMs, flip)
    }
    input.on('data', (c: Buffer) => {
      h.update(c)
      bytes += c.length
      if (p.kind === 'rate') {
        // ahead of the rate: stop until the schedule catches up
        const due = (bytes / p.bytesPerSec) * 1000 - (Date.now() - start)
        if (due > 5) {
          input.pause()
          later(due, () => input.resume())
        }
      }
    })
    input.once('end', () => finish('end'))
    input.once('error', (err) => finish(err.message || String(err)))
    input.once('close', () => finish('closed without end'))
  })
}

/**
 * A TCP server that sends `size` bytes of `ByteSource(size, seed)` to each connection, then a FIN: as fast as the
 * connection takes them, or at `bytesPerSec`.
 */
export async function sourceServer(
  size: number,
  seed = 1,
  bytesPerSec?: number,
): Promise<{ port: number; close(): Promise<void> }> {
  return listen(
    createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {})
      s.resume() // ignore what the client sends
      const src = new ByteSource(size, seed)
      void (bytesPerSec === undefined ? pump(src, s) : pumpAt(src, s, bytesPerSec)).catch(() => {})
    }),
  )
}

/** A TCP server that reads each connection at `p`, then answers `<bytes> <sha256>` or nothing if it ended badly. */
export async function pacedHashServer(
  p: ReadPace,
  onResult?: (r: ReadResult) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  return listen(
    createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {})
      void readPaced(s, p).then((r) => {
        onResult?.(r)
        if (r.ending === 'end') s.end(`${r.bytes} ${r.sha256}`)
        else s.destroy()
      })
    }),
  )
}

/**
 * An HTTP server: `GET /blob/<bytes>` answers that many bytes of `ByteSource` (Content-Length); `POST /upload`
 * reads the body at the pace named by the `x-pace` header (`fast`, `<n>mibps`, `bursts`) and answers its size and
 * SHA-256.
 */
export async function blobHttpServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server: HttpServer = createHttpServer((req, res) => {
    const m = /^\/blob\/(\d+)$/.exec(req.url ?? '')
    if (req.method === 'GET' && m !== null) {
      const size = Number(m[1])
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
      void pump(new ByteSource(size), res).catch(() => {})
      return
    }
    if (req.method === 'POST' && req.url === '/upload') {
      const name = String(req.headers['x-pace'] ?? 'fast')
      const rate = /^(\d+)mibps$/.exec(name)
      const p = rate !== null ? pace.mibps(Number(rate[1])) : name === 'bursts' ? pace.bursts() : pace.fast
      void readPaced(req, p).then((r) => {
        if (r.ending !== 'end') return void res.destroy()
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${r.bytes} ${r.sha256}`)
      })
      return
    }
    res.writeHead(404).end('not found')
  })
  return listen(server as unknown as Server)
}

/** Listens on a free loopback port; `sockets` holds the open connections, which `close()` destroys. */
export async function listen(server: Server): Promise<{ port: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  return {
    port: addr.port,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

/** Resolves true at `socket`'s next 'drain', false if none comes within `ms`. */
export function drained(socket: Writable, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('drain', onDrain)
      resolve(false)
    }, ms)
    const onDrain = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    socket.once('drain', onDrain)
  })
}

/**
 * Writes `piece` again and again with back-pressure until the other side stops taking bytes (no 'drain' within
 * `stallMs`) or `maxBytes` are written: for a peer that must stop reading a client who does not read its answers.
 */
export async function writeUntilStalled(
  socket: Writable,
  piece: Buffer,
  maxBytes: number,
  stallMs = 2_000,
): Promise<{ written: number; stalled: boolean }> {
  let written = 0
  let stalled = false
  while (written < maxBytes && !stalled) {
    stalled = !socket.write(piece) && !(await drained(socket, stallMs))
    written += piece.length
  }
  return { written, stalled }
}

/**
 * For a server that must stop reading a client who reads none of its answers: `socket` (paused, reading nothing)
 * writes `piece` after `piece` until the server stops taking them, which must come before 40 MiB, several times what
 * the kernel buffers of both directions hold; then it reads, and the server must take bytes again within 10 s.
 * `what` names the bytes in the messages. Resolves with the bytes written before the stop.
 */
export async function checkStopsReading(socket: Socket, piece: Buffer, what: string): Promise<number> {
  const { written, stalled } = await writeUntilStalled(socket, piece, 64 * 1024 * 1024)
  assert.ok(stalled, `the server took all ${written} bytes of ${what}`)
  assert.ok(written < 40 * 1024 * 1024, `the server took ${written} bytes of ${what} before it stopped`)
  socket.on('data', () => {})
  socket.resume()
  assert.equal(await drained(socket, 10_000), true, `the server took no more ${what} once its answers were read`)
  return written
}
