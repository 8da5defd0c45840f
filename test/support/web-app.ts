/**
 * Test services for the access-port and gateway tests, on real loopback sockets: an HTTP web app (with a WebSocket
 * echo) and a raw TCP banner-and-echo server, plus the deterministic byte pattern the web app serves.
 */
import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import { WebSocketServer } from 'ws'

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
