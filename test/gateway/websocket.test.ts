/**
 * WebSockets (the `ws` client against a `ws` echo server behind a service) through the gateway, through the HTTP
 * proxy (CONNECT and absolute form) and through SOCKS5: messages both ways, text and binary, and a clean close.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { socks5Connect } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'

/** Opens a CONNECT tunnel through the HTTP proxy and returns the socket once the proxy said 200. */
async function connectTunnel(access: string, authority: string): Promise<Socket> {
  const i = access.lastIndexOf(':')
  const s = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)) })
  await once(s, 'connect')
  s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`)
  let head = Buffer.alloc(0)
  while (!head.includes('\r\n\r\n')) head = Buffer.concat([head, (await once(s, 'data'))[0] as Buffer])
  const end = head.indexOf('\r\n\r\n') + 4
  assert.match(head.subarray(0, end).toString(), /^HTTP\/1\.1 200 /)
  if (end < head.length) s.unshift(head.subarray(end))
  return s
}

/** Connects, checks the greeting, echoes a text and a binary message, closes cleanly. */
async function exercise(ws: WebSocket, expectWelcome: RegExp): Promise<void> {
  const messages: { data: Buffer; binary: boolean }[] = []
  const waiters: (() => void)[] = []
  ws.on('message', (data, binary) => {
    messages.push({ data: data as Buffer, binary })
    waiters.shift()?.()
  })
  const next = async (): Promise<{ data: Buffer; binary: boolean }> => {
    if (messages.length === 0) await new Promise<void>((r) => waiters.push(r))
    return messages.shift()!
  }
  await once(ws, 'open')
  assert.match((await next()).data.toString(), expectWelcome)
  ws.send('hello over warren')
  const text = await next()
  assert.equal(text.binary, false)
  assert.equal(text.data.toString(), 'hello over warren')
  const bin = randomBytes(200_000)
  ws.send(bin)
  const back = await next()
  assert.equal(back.binary, true)
  assert.ok(back.data.equals(bin))
  ws.close(1000, 'done')
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
  assert.equal(code, 1000)
  assert.equal(reason.toString(), 'done')
}

forEachEngine((engine, label) =>
  describe(`WebSockets through the access port ${label}`, () => {
    let p: Pair
    before(async () => {
      p = await startPair({ gatewayFastPath: FAST_PATH[engine] })
    })
    after(() => p.stop())

    it('through the gateway', async () => {
      await exercise(new WebSocket(`ws://${p.access}/http/n1/web/chat?room=1`), /^welcome \/chat\?room=1 peer=-$/)
    })

    it('through the gateway to a "type": "http" service, which learns the caller from X-Warren-Peer', async () => {
      const id = p.client.peerId.toString()
      await exercise(
        new WebSocket(`ws://${p.access}/http/n1/hweb/chat`, { headers: { 'X-Warren-Peer': 'forged' } }),
        new RegExp(`^welcome /chat peer=${id}$`),
      )
    })

    it("through the gateway in Kubo's /p2p/…/x/…/http/ form", async () => {
      await exercise(new WebSocket(`ws://${p.access}/p2p/n1/x/web/http/kubo`), /^welcome \/kubo peer=-$/)
    })

    it('through the HTTP proxy with CONNECT', async () => {
      const socket = await connectTunnel(p.access, 'web.n1.warren:80')
      await exercise(
        new WebSocket('ws://web.n1.warren/tunnel', { createConnection: () => socket }),
        /^welcome \/tunnel/,
      )
    })

    it('through SOCKS5', async () => {
      const { reply, socket } = await socks5Connect(p.access, { host: 'web.n1.warren', port: 80 })
      assert.equal(reply, 0)
      await exercise(new WebSocket('ws://web.n1.warren/socks', { createConnection: () => socket }), /^welcome \/socks/)
    })

    it('through the HTTP proxy in absolute form (Upgrade on GET http://…)', async () => {
      const i = p.access.lastIndexOf(':')
      const s = connect({ host: '127.0.0.1', port: Number(p.access.slice(i + 1)) })
      await once(s, 'connect')
      s.write(
        'GET http://web.n1.warren/abs HTTP/1.1\r\nHost: web.n1.warren\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      let buf = Buffer.alloc(0)
      while (!buf.includes('\r\n\r\n')) buf = Buffer.concat([buf, (await once(s, 'data'))[0] as Buffer])
      const end = buf.indexOf('\r\n\r\n') + 4
      const head = buf.subarray(0, end).toString()
      assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
      assert.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i)
      let frame = buf.subarray(end)
      while (frame.length < 2 || frame.length < 2 + frame[1]!)
        frame = Buffer.concat([frame, (await once(s, 'data'))[0] as Buffer])
      assert.equal(frame[0], 0x81, 'a final text frame')
      assert.equal(frame.subarray(2, 2 + frame[1]!).toString(), 'welcome /abs peer=-')
      s.destroy()
    })

    it('a refused WebSocket gets the error page with its status', async () => {
      const ws = new WebSocket(`ws://${p.access}/http/n1/nope/chat`)
      ws.on('error', () => {}) // terminate() before the handshake reports an error we do not care about
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage]
      assert.equal(res.statusCode, 404)
      assert.equal(res.headers['x-warren-error'], 'ERR_UNKNOWN_SERVICE')
      let body = ''
      for await (const c of res) body += c
      assert.match(body, /^404 Not Found\n\nERR_UNKNOWN_SERVICE: node 12D3KooW\w+ has no service "nope"\n/)
      ws.terminate()
    })

    it('a WebSocket to a name outside .warren through the proxy is refused with 403', async () => {
      const i = p.access.lastIndexOf(':')
      const s = connect({ host: '127.0.0.1', port: Number(p.access.slice(i + 1)) })
      await once(s, 'connect')
      s.write(
        'GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      )
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      await once(s, 'close')
      const text = Buffer.concat(chunks).toString()
      assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/)
      assert.match(text, /ERR_NOT_WARREN_NAME: "example\.com" is not a \.warren name/)
    })
  }),
)
