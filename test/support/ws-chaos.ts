/**
 * A WebSocket service (`ws` on Node's HTTP server) whose every connection picks its behaviour by path, so that one
 * service echoes, pushes, cuts and refuses:
 *
 * | path                                  | behaviour                                                                 |
 * | ------------------------------------- | ------------------------------------------------------------------------- |
 * | `/echo`                               | every message back, text as text and binary as binary                     |
 * | `/push/<n>/<size>/<seed>`             | `n` binary messages, message `j` being `ByteSource(size, seed + j)`; then  |
 * |                                       | a close with 1000 "pushed"                                                 |
 * | `/cut/<n>/<size>/<seed>/<rst or fin>` | the first `n` messages of the push, then half of a message of `size` B,  |
 * |                                       | and the TCP connection reset or ended, with no close frame                |
 * | `/close/<code>`                       | a close with `code` and the reason "custom" at once                       |
 * | `/refuse`                             | `403 Forbidden` instead of the upgrade                                    |
 *
 * A `?id=` on the path names the connection: `closes` keeps the code each named connection closed with, as this
 * side saw it (1006 when the connection ended without a close frame). `open()` counts the TCP connections open now.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { Server, Socket } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'
import { ByteSource, listen } from './transfer.ts'

export interface WsChaos {
  port: number
  /** TCP connections open now. */
  open(): number
  /** Close code by connection id, as the service saw it. */
  closes: Map<string, number>
  close(): Promise<void>
}

/** Message `j` of a push: `ByteSource(size, seed + j)`. */
export const pushed = (size: number, seed: number, j: number): Buffer =>
  new ByteSource(size, seed + j).next(size) ?? Buffer.alloc(0)

/** Sends `n` messages of a push, each once the last was written (the socket's back-pressure holds the next). */
async function push(ws: WebSocket, n: number, size: number, seed: number): Promise<void> {
  for (let j = 0; j < n; j++) {
    await new Promise<void>((resolve, reject) =>
      ws.send(pushed(size, seed, j), (err) => (err ? reject(err) : resolve())),
    )
  }
}

export async function wsChaos(): Promise<WsChaos> {
  const closes = new Map<string, number>()
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 })
  const http = createServer((_req, res) => res.writeHead(426).end())
  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {})
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const id = url.searchParams.get('id')
      ws.on('error', () => {})
      ws.on('close', (code) => {
        if (id !== null) closes.set(id, code)
      })
      const p = url.pathname.split('/').slice(1)
      if (p[0] === 'echo') ws.on('message', (data, binary) => ws.send(data, { binary }))
      else if (p[0] === 'push') {
        push(ws, Number(p[1]), Number(p[2]), Number(p[3])).then(
          () => ws.close(1000, 'pushed'),
          () => ws.terminate(),
        )
      } else if (p[0] === 'cut') {
        const size = Number(p[2])
        push(ws, Number(p[1]), size, Number(p[3])).then(
          () => {
            // a frame header for `size` bytes and half of them, then the connection goes without a close frame
            const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0])
            header.writeUInt32BE(size, 6)
            socket.write(Buffer.concat([header, Buffer.alloc(size >> 1, 7)]))
            if (p[4] === 'rst') socket.resetAndDestroy()
            else socket.end(() => socket.destroy())
          },
          () => ws.terminate(),
        )
      } else if (p[0] === 'close') ws.close(Number(p[1]), 'custom')
      else ws.close(4004, 'unknown path')
    })
  })
  const l = await listen(http as unknown as Server)
  return {
    port: l.port,
    open: () => l.sockets.size,
    closes,
    close: async () => {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      await l.close()
    },
  }
}
