/**
 * The gateway's framing edge cases, run on both engines (the fast path, src/gateway/fast/fast-path.ts, and the full
 * path), with raw client sockets, the test web app and a hand-written HTTP service whose framing is exact:
 * pipelined requests, chunked request bodies, a switch of target on one connection, HEAD/204/304, interim 1xx,
 * close-delimited responses, Location rewriting, and what the fast path hands to the full path (malformed or
 * over-size heads, Upgrade) or refuses (a malformed chunked body). Where the engines differ on purpose the test
 * says so (docs/access.md).
 */
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'

interface Response {
  status: number
  headers: Record<string, string>
  body: string
}

/** Reads `n` responses off a socket with an independent minimal parser; `bodyless[i]` for HEAD-like answers. */
class Reader {
  #buf = Buffer.alloc(0)
  #waiters: (() => void)[] = []
  closed = false

  readonly socket: Socket

  constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d])
      for (const w of this.#waiters.splice(0)) w()
    })
    socket.on('close', () => {
      this.closed = true
      for (const w of this.#waiters.splice(0)) w()
    })
  }

  async #more(): Promise<void> {
    if (this.closed) throw new Error(`connection closed; have ${JSON.stringify(this.#buf.toString())}`)
    await new Promise<void>((r) => this.#waiters.push(r))
  }

  async next(bodyless = false): Promise<Response> {
    while (this.#buf.indexOf('\r\n\r\n') < 0) await this.#more()
    const end = this.#buf.indexOf('\r\n\r\n')
    const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n')
    const status = Number(lines[0]!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
    }
    this.#buf = this.#buf.subarray(end + 4)
    let body = ''
    if (bodyless || status === 204 || status === 304 || status < 200) return { status, headers, body }
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        while (this.#buf.indexOf('\r\n') < 0) await this.#more()
        const lf = this.#buf.indexOf('\r\n')
        const size = Number.parseInt(this.#buf.subarray(0, lf).toString(), 16)
        while (this.#buf.length < lf + 2 + size + 2) await this.#more()
        body += this.#buf.subarray(lf + 2, lf + 2 + size).toString()
        this.#buf = this.#buf.subarray(lf + 2 + size + 2)
        if (size === 0) break
      }
    } else {
      const n = Number(headers['content-length'] ?? 0)
      while (this.#buf.length < n) await this.#more()
      body = this.#buf.subarray(0, n).toString()
      this.#buf = this.#buf.subarray(n)
    }
    return { status, headers, body }
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.#waiters.push(r))
  }
}

function open(access: string, localAddress?: string): Promise<Reader> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const to = {
      host: access.slice(0, i),
      port: Number(access.slice(i + 1)),
      ...(localAddress ? { localAddress } : {}),
    }
    const s = connect(to, () => resolve(new Reader(s)))
    s.on('error', reject)
  })
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: gw\r\n${extra}\r\n`

/**
 * A keep-alive HTTP service answering bodyless requests by path with exact bytes: `/head-info` (a HEAD answer with
 * Content-Length and no body), `/204`, `/304` (Content-Length but no body), `/early` (100 and 103 before the 200),
 * `/hints` (103 alone before the 200), `/eof` (no length: the body runs to the close), `/moved` (Location: /there),
 * anything else `ok <path>`.
 */
async function startExactServer(): Promise<{ server: Server; port: number; seen: string[] }> {
  const seen: string[] = []
  const server = createServer((s) => {
    let buf = ''
    s.on('error', () => {})
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const [method, path] = buf.slice(0, end).split(' ')
        buf = buf.slice(end + 4)
        seen.push(`${method} ${path}`)
        const ok = (body: string, extra = ''): string =>
          `HTTP/1.1 200 OK\r\n${extra}Content-Length: ${body.length}\r\n\r\n${method === 'HEAD' ? '' : body}`
        if (path === '/204') s.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n')
        else if (path === '/304') s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: "e"\r\n\r\n')
        else if (path === '/early')
          s.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok('final')}`)
        else if (path === '/hints') s.write(`HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok('final')}`)
        else if (path === '/eof') {
          s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ')
          setTimeout(() => s.end('the end'), 20)
        } else if (path === '/moved') s.write(ok('', 'Location: /there\r\n'))
        else s.write(ok(`ok ${path}`))
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port, seen }
}

forEachEngine((engine, label) =>
  describe(`gateway: framing and connections ${label}`, () => {
    let p: Pair
    let exact: Awaited<ReturnType<typeof startExactServer>>
    before(async () => {
      p = await startPair({ gatewayFastPath: FAST_PATH[engine], client: { proxy: { hosts: ['gw'] } } })
      exact = await startExactServer()
      p.host.expose('exact', `/tcp/${exact.port}`)
    })
    after(async () => {
      exact.server.close()
      await p.stop()
    })

    it('pipelined requests in one write are answered in order', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info?k=0') + get('/http/n1/exact/a') + get('/http/n1/web/info?k=2'))
      const rs = [await c.next(), await c.next(), await c.next()]
      assert.deepEqual(
        rs.map((r) => r.status),
        [200, 200, 200],
      )
      assert.equal(JSON.parse(rs[0]!.body).url, '/info?k=0')
      assert.equal(rs[1]!.body, 'ok /a')
      assert.equal(JSON.parse(rs[2]!.body).url, '/info?k=2')
      c.socket.destroy()
    })

    it('a chunked request body (extension, trailer) reaches the service whole, and the next request follows', async () => {
      const c = await open(p.access)
      const body = ['hello ', 'chunked ', 'world']
      let req = 'POST /http/n1/web/hash HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n'
      req += `${body[0]!.length.toString(16)};ext=1\r\n${body[0]}\r\n`
      c.socket.write(req)
      await new Promise((r) => setTimeout(r, 30)) // the rest arrives later, split inside a chunk
      const rest = `${body[1]!.length.toString(16)}\r\n${body[1]}\r\n${body[2]!.length.toString(16)}\r\n${body[2]}\r\n`
      c.socket.write(rest.slice(0, 5))
      c.socket.write(`${rest.slice(5)}0\r\nX-Trailer: t\r\n\r\n${get('/http/n1/web/info?after')}`)
      const hashed = await c.next()
      assert.equal(hashed.status, 200)
      const { createHash } = await import('node:crypto')
      assert.deepEqual(JSON.parse(hashed.body), {
        bytes: body.join('').length,
        sha256: createHash('sha256').update(body.join('')).digest('hex'),
      })
      assert.equal(JSON.parse((await c.next()).body).url, '/info?after')
      c.socket.destroy()
    })

    it('one connection switches between services and back, each getting its own headers', async () => {
      const c = await open(p.access)
      const seen: string[] = []
      for (const path of ['/http/n1/web/info?1', '/http/n1/hweb/info?2', '/p2p/n1/x/web/http/info?3']) {
        c.socket.write(get(path))
        const r = await c.next()
        assert.equal(r.status, 200)
        const info = JSON.parse(r.body) as { url: string; headers: Record<string, string> }
        seen.push(`${info.url} ${info.headers['x-forwarded-prefix']} ${info.headers['x-warren-peer'] ?? '-'}`)
      }
      const peer = p.client.peerId.toString()
      assert.deepEqual(seen, [
        '/info?1 /http/n1/web -',
        `/info?2 /http/n1/hweb ${peer}`,
        '/info?3 /p2p/n1/x/web/http -',
      ])
      c.socket.destroy()
    })

    it('the same request head from two client addresses: each gets its own X-Forwarded-For', async () => {
      // the fast path reuses a head it parsed and rewrote before (src/http/head-memo.ts): never across clients
      const forwardedFor: string[] = []
      for (const from of ['127.0.0.1', '127.0.0.2', '127.0.0.1']) {
        const c = await open(p.access, from)
        for (let k = 0; k < 2; k++) {
          c.socket.write(get('/http/n1/web/info?same'))
          const r = await c.next()
          assert.equal(r.status, 200)
          forwardedFor.push((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-forwarded-for']!)
        }
        c.socket.destroy()
      }
      assert.deepEqual(forwardedFor, ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2', '127.0.0.1', '127.0.0.1'])
    })

    it('the same response head under two gateway prefixes: each Location goes under its own', async () => {
      const c = await open(p.access)
      const seen: string[] = []
      for (const path of ['/http/n1/exact/moved', '/p2p/n1/x/exact/http/moved', '/http/n1/exact/moved']) {
        c.socket.write(get(path))
        const r = await c.next()
        assert.equal(r.status, 200)
        seen.push(r.headers.location!)
      }
      assert.deepEqual(seen, ['/http/n1/exact/there', '/p2p/n1/x/exact/http/there', '/http/n1/exact/there'])
      c.socket.destroy()
    })

    it('HEAD, 204 and 304 answers have no body; 1xx are skipped; the connection goes on', async () => {
      const c = await open(p.access)
      c.socket.write(`HEAD /http/n1/exact/head-info HTTP/1.1\r\nHost: gw\r\n\r\n`)
      const head = await c.next(true)
      assert.equal(head.status, 200)
      assert.equal(head.headers['content-length'], '13')
      for (const [path, status] of [
        ['/204', 204],
        ['/304', 304],
      ] as const) {
        c.socket.write(get(`/http/n1/exact${path}`))
        const r = await c.next()
        assert.equal(r.status, status)
      }
      c.socket.write(get('/http/n1/exact/hints'))
      const hints = await c.next()
      assert.deepEqual([hints.status, hints.body], [200, 'final'])
      c.socket.write(get('/http/n1/exact/early'))
      const early = await c.next()
      if (engine === 'fast') assert.deepEqual([early.status, early.body], [200, 'final'])
      else {
        // undici refuses a 100 Continue nobody asked for (docs/access.md)
        assert.equal(early.status, 502)
        assert.match(
          early.body.split('\n')[2]!,
          /^ERR_PROTOCOL: service "exact" on node \S+ closed the connection without a complete HTTP response \(bad response\)$/,
        )
      }
      c.socket.write(get('/http/n1/exact/last'))
      assert.equal((await c.next()).body, 'ok /last')
      c.socket.destroy()
    })

    it('a close-delimited response goes to the client chunked, and the client connection stays open', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/exact/eof'))
      const r = await c.next()
      assert.deepEqual([r.status, r.headers['transfer-encoding'], r.body], [200, 'chunked', 'until the end'])
      c.socket.write(get('/http/n1/exact/again'))
      assert.equal((await c.next()).body, 'ok /again')
      c.socket.destroy()
    })

    it('Location under the prefix of the form used; absolute form (proxy) leaves it as is', async () => {
      const c = await open(p.access)
      c.socket.write(get('/p2p/n1/x/exact/http/moved'))
      assert.equal((await c.next()).headers.location, '/p2p/n1/x/exact/http/there')
      c.socket.write(`GET http://exact.n1.warren/moved HTTP/1.1\r\nHost: exact.n1.warren\r\n\r\n`)
      assert.equal((await c.next()).headers.location, '/there')
      c.socket.destroy()
    })

    it('Connection: close gets its answer with Connection: close, then the connection closes', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info', 'Connection: close\r\n'))
      const r = await c.next()
      assert.equal(r.headers.connection, 'close')
      await c.waitClosed()
    })
  }),
)

forEachEngine((engine, label) =>
  describe(`gateway: what the fast path hands to the full path, and bad bodies ${label}`, () => {
    let p: Pair
    before(async () => {
      p = await startPair({
        gatewayFastPath: FAST_PATH[engine],
        client: { proxy: { maxHeaderBytes: 4096, hosts: ['gw'] } },
      })
    })
    after(() => p.stop())

    const badHead = (r: Response): string => r.body.split('\n')[2]!

    it('a malformed head after a fast request gets the full path 400', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info'))
      assert.equal((await c.next()).status, 200)
      c.socket.write('GET /http/n1/web/info HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n')
      const r = await c.next()
      assert.equal(r.status, 400)
      assert.equal(r.headers['x-warren-error'], 'ERR_BAD_REQUEST')
      assert.match(badHead(r), /^ERR_BAD_REQUEST: the access port could not parse the request \(/)
    })

    it('a head over proxy.maxHeaderBytes after a fast request gets 431 ERR_HEADERS_TOO_LARGE', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info'))
      assert.equal((await c.next()).status, 200)
      c.socket.write(get('/http/n1/web/info', `X-Big: ${'b'.repeat(5000)}\r\n`))
      const r = await c.next()
      assert.equal(r.status, 431)
      assert.match(badHead(r), /^ERR_HEADERS_TOO_LARGE: the request head is larger than 4096 bytes$/)
    })

    it('an Upgrade after fast requests is carried by the full path (101 from the service)', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info'))
      assert.equal((await c.next()).status, 200)
      c.socket.write(
        get(
          '/http/n1/web/socket',
          'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
        ),
      )
      const r = await c.next(true)
      assert.equal(r.status, 101)
      assert.equal(r.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
      c.socket.destroy()
    })

    it('a PAC request after a gateway request is served by the full path', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info') + get('/proxy.pac'))
      assert.equal((await c.next()).status, 200)
      const pac = await c.next()
      assert.equal(pac.status, 200)
      assert.match(pac.body, /FindProxyForURL/)
      c.socket.destroy()
    })

    it('a malformed chunked request body gets 400 and the connection closes', async () => {
      const c = await open(p.access)
      c.socket.write('POST /http/n1/web/slow HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')
      const r = await c.next()
      assert.equal(r.status, 400)
      assert.equal(r.headers.connection, 'close')
      // the reason in brackets is each parser's own wording (docs/access.md)
      const reason = engine === 'fast' ? 'invalid chunk size' : 'Parse Error: Invalid character in chunk size'
      assert.equal(badHead(r), `ERR_BAD_REQUEST: the access port could not parse the request (${reason})`)
      await c.waitClosed()
    })

    it('an unknown node after a fast request gets the exact 404 page', async () => {
      const c = await open(p.access)
      c.socket.write(get('/http/n1/web/info') + get('/http/nobody/web/'))
      assert.equal((await c.next()).status, 200)
      const r = await c.next()
      assert.equal(r.status, 404)
      assert.equal(badHead(r), 'ERR_UNKNOWN_PEER: "nobody" is not a node id, a ticket, or an alias in peers')
      c.socket.destroy()
    })
  }),
)
