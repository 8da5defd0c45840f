/**
 * An HTTP target that fails on purpose, for tests of how a cut transfer ends through Warren:
 *
 * - `GET /cut/<size>/<at>/<framing>/<how>` answers a body of `size` bytes of `ByteSource(size)` framed by
 *   `length` (Content-Length), `chunked` or `close` (neither: the body ends with the connection), sends the first
 *   `at` bytes of it and then cuts the connection: `rst` (a TCP reset) or `fin` (a clean close, mid-body).
 * - `GET /blob/<size>` answers `size` bytes with Content-Length, with back-pressure (for slow readers).
 * - `POST /sink` reads the request body and records how its connection ended under the request's `x-id` header:
 *   `end` once the whole Content-Length came, else `FIN before the body ended` or the socket error's code
 *   (`ECONNRESET`).
 */
import { createServer, type Socket } from 'node:net'
import { ByteSource, pump, type ReadResult } from './transfer.ts'

export interface CutServer {
  port: number
  /** How the upload with `x-id: id` ended (waits for it). */
  upload(id: string): Promise<ReadResult>
  /** Resolves once `bytes` of the upload with `x-id: id` have arrived. */
  received(id: string, bytes: number): Promise<void>
  close(): Promise<void>
}

/** Splits one HTTP/1.1 request head off the front of `buf`. */
function takeHead(buf: Buffer): { head: string; rest: Buffer } | undefined {
  const i = buf.indexOf('\r\n\r\n')
  if (i < 0) return undefined
  return { head: buf.subarray(0, i).toString('latin1'), rest: buf.subarray(i + 4) }
}

export async function cutServer(): Promise<CutServer> {
  const uploads = new Map<string, (r: ReadResult) => void>()
  const results = new Map<string, Promise<ReadResult>>()
  const resultFor = (id: string): Promise<ReadResult> => {
    let p = results.get(id)
    if (p === undefined) {
      p = new Promise<ReadResult>((resolve) => uploads.set(id, resolve))
      results.set(id, p)
    }
    return p
  }
  const progress = new Map<string, number>()
  const waiters = new Set<{ id: string; bytes: number; resolve: () => void }>()
  const received = (id: string, bytes: number): Promise<void> =>
    new Promise((resolve) => {
      if ((progress.get(id) ?? -1) >= bytes) resolve()
      else waiters.add({ id, bytes, resolve })
    })
  const advance = (id: string, got: number): void => {
    progress.set(id, got)
    for (const w of waiters) {
      if (w.id === id && got >= w.bytes) {
        waiters.delete(w)
        w.resolve()
      }
    }
  }
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const h = takeHead(buf)
      if (h === undefined) return
      s.off('data', onData)
      s.pause()
      serve(s, h.head, h.rest)
    }
    s.on('data', onData)
  })
  const serve = (s: Socket, head: string, rest: Buffer): void => {
    const [method, target] = head.split(' ') as [string, string]
    const cut = /^\/cut\/(\d+)\/(\d+)\/(length|chunked|close)\/(rst|fin)$/.exec(target)
    if (method === 'GET' && cut !== null) {
      const size = Number(cut[1])
      const at = Number(cut[2])
      const framing = cut[3]!
      const src = new ByteSource(size)
      let h = 'HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n'
      if (framing === 'length') h += `content-length: ${size}\r\n`
      else if (framing === 'chunked') h += 'transfer-encoding: chunked\r\n'
      else h += 'connection: close\r\n'
      s.write(`${h}\r\n`)
      for (let left = at; left > 0; ) {
        const c = src.next(Math.min(left, 64 * 1024))!
        left -= c.length
        s.write(
          framing === 'chunked'
            ? Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')])
            : c,
        )
      }
      // let the bytes leave before the cut: a fixed wait, as the kernel's send queue (which an RST discards) cannot
      // be watched from here
      const done = (): void => {
        setTimeout(() => (cut[4] === 'rst' ? s.resetAndDestroy() : s.end()), 200)
      }
      if (s.writableLength === 0) done()
      else s.once('drain', done)
      return
    }
    const blob = /^\/blob\/(\d+)$/.exec(target)
    if (method === 'GET' && blob !== null) {
      const size = Number(blob[1])
      s.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${size}\r\n\r\n`)
      s.resume()
      void pump(new ByteSource(size), s, false).catch(() => {})
      return
    }
    if (method === 'POST' && target === '/sink') {
      const id = /\r\nx-id: *([^\r]+)/i.exec(head)?.[1] ?? ''
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 'NaN')
      void resultFor(id)
      const resolve = uploads.get(id)!
      // the body up to its Content-Length, then an answer; the connection's end or reset before that is the cut
      let got = rest.length
      const check = (): void => {
        if (got >= length) s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${String(got).length}\r\n\r\n${got}`)
      }
      advance(id, got)
      s.on('data', (d: Buffer) => {
        got += d.length
        advance(id, got)
        check()
      })
      s.once('end', () =>
        resolve({ bytes: got, sha256: '', ending: got >= length ? 'end' : 'FIN before the body ended' }),
      )
      s.once('error', (err) =>
        resolve({ bytes: got, sha256: '', ending: (err as NodeJS.ErrnoException).code ?? err.message }),
      )
      s.once('close', () => resolve({ bytes: got, sha256: '', ending: 'closed' }))
      s.resume()
      check()
      return
    }
    s.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return {
    port,
    upload: resultFor,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
