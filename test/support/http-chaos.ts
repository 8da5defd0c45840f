/**
 * A keep-alive HTTP/1.1 service (Node's own server) whose every request picks its answer by path, so that one
 * service answers, cuts and stalls in every way, many requests per connection:
 *
 * | request                              | answer                                                                  |
 * | ------------------------------------ | ----------------------------------------------------------------------- |
 * | `GET /blob/<size>/<seed>`            | `size` bytes of `ByteSource(size, seed)`, Content-Length                |
 * | `GET /chunks/<size>/<seed>`          | the same, chunked                                                       |
 * | `GET /closed/<size>/<seed>`          | the same, neither: the body ends with the connection (close-delimited)  |
 * | `POST /hash`                         | `<bytes> <sha256 hex>` of the body                                      |
 * | `GET /cut/<size>/<at>/<rst or fin>`  | Content-Length `size`, the first `at` bytes, then a reset or a FIN      |
 * | `GET /hang`                          | nothing, ever (until the client goes)                                   |
 *
 * `open()` counts its connections open now, `received()` every request it was sent, `pending()` the requests it is
 * still answering (or never will),
 * `halfClosed()` the connections it has ended that the other side has not closed.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Server } from 'node:net'
import { type DaemonPair, useTargetPair } from './daemon-pair.ts'
import { ByteSource, listen, pump } from './transfer.ts'

export interface HttpChaos {
  port: number
  /** Connections open now. */
  open(): number
  /** Requests received since it started. */
  received(): number
  /** Requests whose answer has not ended yet (finished, or its connection gone). */
  pending(): number
  /** Connections this side has ended (a close-delimited or cut answer) and the other side has not closed yet. */
  halfClosed(): number
  close(): Promise<void>
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? ''
  const blob = /^\/(blob|chunks)\/(\d+)\/(\d+)$/.exec(url)
  if (req.method === 'GET' && blob !== null) {
    const size = Number(blob[2])
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' }
    if (blob[1] === 'blob') headers['content-length'] = size
    res.writeHead(200, headers)
    void pump(new ByteSource(size, Number(blob[3])), res).catch(() => {})
    return
  }
  const closed = /^\/closed\/(\d+)\/(\d+)$/.exec(url)
  if (req.method === 'GET' && closed !== null) {
    // written on the socket itself: Node's response would choose chunked framing for HTTP/1.1
    const s = req.socket
    s.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n')
    void pump(new ByteSource(Number(closed[1]), Number(closed[2])), s).catch(() => {})
    return
  }
  if (req.method === 'POST' && url === '/hash') {
    const h = createHash('sha256')
    let n = 0
    req.on('data', (d: Buffer) => {
      h.update(d)
      n += d.length
    })
    req.on('end', () => {
      const body = `${n} ${h.digest('hex')}`
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body)
    })
    return
  }
  const cut = /^\/cut\/(\d+)\/(\d+)\/(rst|fin)$/.exec(url)
  if (req.method === 'GET' && cut !== null) {
    const size = Number(cut[1])
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
    const head = new ByteSource(Number(cut[2]))
    void pump(head, res, false).then(
      () => {
        const s = req.socket
        // the bytes leave before the cut (an RST would discard what the kernel still holds)
        setTimeout(() => (cut[3] === 'rst' ? s.resetAndDestroy() : s.end()), 100)
      },
      () => {},
    )
    return
  }
  if (req.method === 'GET' && url === '/hang') return
  res.writeHead(404, { 'content-length': 0 }).end()
}

export async function httpChaos(): Promise<HttpChaos> {
  let pending = 0
  let received = 0
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    received++
    pending++
    res.once('close', () => pending--)
    answer(req, res)
  })
  const { port, sockets, close } = await listen(server as unknown as Server)
  return {
    port,
    open: () => sockets.size,
    received: () => received,
    pending: () => pending,
    halfClosed: () => [...sockets].filter((s) => s.writableEnded && !s.destroyed).length,
    close,
  }
}

/** For a describe block: this service behind daemon `a` ({@link useTargetPair}). */
export function useChaosPair(): { pair(): DaemonPair; target(): HttpChaos } {
  return useTargetPair(httpChaos)
}
