/**
 * Shared set-up for the access-port and gateway tests: a host node with HTTP, raw-TCP and WebSocket services on
 * real loopback servers, a client node whose access port the tests talk to, and real clients (curl, ws, a small
 * SOCKS5 client for reply codes curl does not show).
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { WebSocketServer } from 'ws'
import { validateConfig } from '../../src/config/load.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'

export const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex')

const PERIOD = 251
const PATTERN = Buffer.from(Array.from({ length: PERIOD * 4 * 4096 + PERIOD }, (_, i) => (i * 31 + 7) % PERIOD))

/** Deterministic bytes: byte i is (i * 31 + 7) mod 251, so any slice can be checked (a view when n ≤ 4 MiB). */
export function patternBytes(offset: number, n: number): Buffer {
  const start = offset % PERIOD
  if (start + n <= PATTERN.length) return PATTERN.subarray(start, start + n)
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i += PATTERN.length - PERIOD) {
    PATTERN.copy(b, i, (offset + i) % PERIOD, ((offset + i) % PERIOD) + Math.min(PATTERN.length - PERIOD, n - i))
  }
  return b
}

function listenPort(server: Server | NetServer): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
}

/**
 * The test web app. Routes: `/info` (JSON of what arrived), `/echo` (body back, streamed), `/hash` (byte count
 * and SHA-256 of the body), `/bytes?n=` (n pattern bytes, streamed), `/redirect`, `/slow` (never answers),
 * `/bigheader?n=` (a response header of n bytes), `/page` (HTML that opens a WebSocket to `?ws=<url>`).
 * Any Upgrade is a WebSocket echo.
 */
export async function startWebApp(): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createHttpServer({ maxHeaderSize: 64 * 1024 }, (req, res) => void route(req, res))
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    ws.send(`welcome ${req.url} peer=${req.headers['x-warren-peer'] ?? '-'}`)
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  const port = await listenPort(server)
  return {
    server,
    port,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x')
  if (url.pathname === '/echo') {
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' })
    req.pipe(res)
    return
  }
  if (url.pathname === '/hash') {
    const h = createHash('sha256')
    let n = 0
    for await (const c of req) {
      h.update(c as Buffer)
      n += (c as Buffer).length
    }
    res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') }))
    return
  }
  if (url.pathname === '/bytes') {
    const total = Number(url.searchParams.get('n'))
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
    let sent = 0
    const chunk = 1 << 20
    const write = (): void => {
      while (sent < total) {
        const n = Math.min(chunk, total - sent)
        const ok = res.write(patternBytes(sent, n))
        sent += n
        if (!ok) return void res.once('drain', write)
      }
      res.end()
    }
    write()
    return
  }
  if (url.pathname === '/redirect') {
    res.writeHead(302, { location: '/info?from=redirect' })
    res.end()
    return
  }
  if (url.pathname === '/slow') return // never answers
  if (url.pathname === '/bigheader') {
    res.writeHead(200, { 'x-big': 'x'.repeat(Number(url.searchParams.get('n'))) })
    res.end('big')
    return
  }
  if (url.pathname === '/page') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(pageHtml(url.searchParams.get('ws') ?? ''))
    return
  }
  let body = 0
  for await (const c of req) body += (c as Buffer).length
  res.setHeader('content-type', 'application/json')
  res.end(
    JSON.stringify({
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body,
    }),
  )
}

function pageHtml(wsUrl: string): string {
  return `<!doctype html><html><head><title>warren page</title></head><body>
<h1 id="title">Hello through Warren</h1><p id="ws">connecting</p>
<script>
const out = document.getElementById('ws')
const ws = new WebSocket(${JSON.stringify(wsUrl)})
const seen = []
ws.onmessage = (e) => { seen.push(e.data); if (seen.length === 1) ws.send('ping from the browser'); else { out.textContent = seen.join(' | '); ws.close() } }
ws.onerror = () => { out.textContent = 'websocket error' }
</script></body></html>`
}

/** A raw TCP service (not HTTP): greets, answers the first line with `echo: <line>` and closes. */
export async function startRawServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.write('hello from raw tcp\n')
    let line = ''
    s.on('data', (d: Buffer) => {
      line += d.toString()
      const i = line.indexOf('\n')
      if (i >= 0) s.end(`echo: ${line.slice(0, i)}\n`)
    })
  })
  const port = await listenPort(server)
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

/** A port nothing listens on. */
export async function deadPort(): Promise<number> {
  const s = createServer()
  const port = await listenPort(s)
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

export interface Pair {
  host: WarrenNode
  client: WarrenNode
  /** The client's access port, host:port. */
  access: string
  hostBase36: string
  web: Awaited<ReturnType<typeof startWebApp>>
  raw: Awaited<ReturnType<typeof startRawServer>>
  stop(): Promise<void>
}

/**
 * Host `n1` with services web (tcp), hweb (type http), raw (tcp banner+echo), down (nothing listening), private
 * (allowed only for an unrelated node); client `n0` knows `n1`, `ghost` (a node at a dead address) and `lost`
 * (an id with no address).
 */
export async function startPair(
  opts: { client?: Partial<ConfigInput>; host?: Partial<ConfigInput>; dns?: boolean; gatewayFastPath?: boolean } = {},
): Promise<Pair> {
  const [web, raw, dead] = await Promise.all([startWebApp(), startRawServer(), deadPort()])
  const [hostKey, clientKey, otherKey] = await Promise.all([generateNodeKey(), generateNodeKey(), generateNodeKey()])
  const hostId = peerIdFromPrivateKey(hostKey)
  const clientId = peerIdFromPrivateKey(clientKey)
  const otherId = peerIdFromPrivateKey(otherKey).toString()
  const host = await WarrenNode.start({
    privateKey: hostKey,
    config: validateConfig({
      peers: { n0: clientId.toString(), other: otherId },
      services: {
        web: `/tcp/${web.port}`,
        hweb: { target: `/tcp/${web.port}`, type: 'http' },
        raw: `/tcp/${raw.port}`,
        down: `/tcp/${dead}`,
        private: { target: `/tcp/${web.port}`, allow: ['other'] },
      },
      ...opts.host,
    }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
  })
  const ghostId = peerIdFromPrivateKey(await generateNodeKey())
  const lostId = peerIdFromPrivateKey(await generateNodeKey())
  const client = await WarrenNode.start({
    privateKey: clientKey,
    config: validateConfig({
      peers: {
        n1: host.identity().ticket,
        ghost: encodeTicket({ id: ghostId, addrs: [multiaddr(`/ip4/127.0.0.1/tcp/${dead}`)] }),
        lost: lostId.toString(),
      },
      ...opts.client,
    }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
    ...(opts.dns === true ? { dnsListen: '127.0.0.1:0' } : {}),
    ...(opts.gatewayFastPath === undefined ? {} : { gatewayFastPath: opts.gatewayFastPath }),
  })
  return {
    host,
    client,
    access: client.status().access!.listen,
    hostBase36: formatNodeIdBase36(hostId),
    web,
    raw,
    stop: async () => {
      await client.stop()
      await host.stop()
      await Promise.all([web.close(), raw.close()])
    },
  }
}

export interface CurlResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs curl (never throws); `-sS` so errors land on stderr. */
export function curl(args: string[], opts: { input?: Buffer; timeoutMs?: number } = {}): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'curl',
      ['-sS', '--max-time', String(Math.ceil((opts.timeoutMs ?? 20_000) / 1000)), ...args],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1,
          stdout: stdout.toString('utf8'),
          stderr: stderr.toString('utf8'),
        })
      },
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** Splits `curl -i` output into status, headers and body. */
export function parseCurlResponse(out: string): { status: number; headers: Record<string, string>; body: string } {
  const i = out.indexOf('\r\n\r\n')
  const head = out.slice(0, i).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const j = line.indexOf(':')
    headers[line.slice(0, j).toLowerCase()] = line.slice(j + 1).trim()
  }
  return { status: Number(head[0]!.split(' ')[1]), headers, body: out.slice(i + 4) }
}

/**
 * A minimal SOCKS5 client (RFC 1928/1929) that reports the server's reply code, for the codes curl folds into
 * one message. Resolves with the connected socket when the reply is 0.
 */
export function socks5Connect(
  access: string,
  target: { host: string; port: number; atyp?: 'domain' | 'ipv4' | 'ipv6' },
  auth?: { username: string; password: string },
): Promise<{ reply: number; socket: Socket; authStatus?: number }> {
  const i = access.lastIndexOf(':')
  const socket = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)), allowHalfOpen: true })
  let buf = Buffer.alloc(0)
  const need = (n: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (buf.length >= n) {
          socket.off('data', onData)
          socket.off('close', onClose)
          const out = buf.subarray(0, n)
          buf = buf.subarray(n)
          resolve(out)
        }
      }
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d])
        check()
      }
      const onClose = (): void => reject(new Error(`socks5: closed with ${buf.length}/${n} bytes`))
      socket.on('data', onData)
      socket.once('close', onClose)
      check()
    })
  return (async () => {
    await new Promise<void>((r, j) => socket.once('connect', r).once('error', j))
    socket.write(Buffer.from(auth === undefined ? [5, 1, 0] : [5, 1, 2]))
    const [, method] = await need(2)
    if (method === 0xff) return { reply: 0xff, socket }
    let authStatus: number | undefined
    if (auth !== undefined) {
      const u = Buffer.from(auth.username)
      const p = Buffer.from(auth.password)
      socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]))
      authStatus = (await need(2))[1]
      if (authStatus !== 0) return { reply: -1, socket, authStatus }
    }
    const atyp = target.atyp ?? 'domain'
    let addr: Buffer
    if (atyp === 'domain') addr = Buffer.concat([Buffer.from([3, target.host.length]), Buffer.from(target.host)])
    else if (atyp === 'ipv4') addr = Buffer.from([1, ...target.host.split('.').map(Number)])
    else addr = Buffer.concat([Buffer.from([4]), ipv6Bytes(target.host)])
    const port = Buffer.alloc(2)
    port.writeUInt16BE(target.port)
    socket.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, port]))
    const reply = await need(10)
    if (buf.length > 0) socket.unshift(buf)
    const out: { reply: number; socket: Socket; authStatus?: number } = { reply: reply[1]!, socket }
    if (authStatus !== undefined) out.authStatus = authStatus
    return out
  })()
}

function ipv6Bytes(ip: string): Buffer {
  const [h, t] = ip.split('::') as [string, string | undefined]
  const head = h === '' ? [] : h.split(':')
  const tail = t === undefined || t === '' ? [] : t.split(':')
  const groups = t === undefined ? head : [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail]
  const b = Buffer.alloc(16)
  for (const [i, g] of groups.entries()) b.writeUInt16BE(Number.parseInt(g, 16), i * 2)
  return b
}
