/**
 * The HTTP gateway on the access port: URL forms, methods, query strings, binary and large streamed bodies with
 * checksums, 100 concurrent requests, stream reuse, header rewriting, and every failure with its exact page.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { curl, hashedGet } from '../support/access-clients.ts'
import { eventually } from '../support/eventually.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { patternBytes, sha256 } from '../support/web-app.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'

interface Res {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  reused: boolean
}

/** One request through the gateway with Node's client; `body` may be a Buffer or a chunk generator. */
function send(
  access: string,
  path: string,
  opts: {
    method?: string
    body?: Buffer | (() => AsyncGenerator<Buffer>)
    headers?: Record<string, string>
    agent?: Agent
  } = {},
): Promise<Res> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: access.slice(0, i),
        port: Number(access.slice(i + 1)),
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(chunks),
            reused: req.reusedSocket,
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    const body = opts.body
    if (body === undefined) req.end()
    else if (Buffer.isBuffer(body)) {
      req.setHeader('content-length', body.length) // Node sends no length for DELETE bodies otherwise
      req.end(body)
    } else {
      void (async () => {
        for await (const chunk of body()) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r))
        req.end()
      })()
    }
  })
}

const json = (r: Res) =>
  JSON.parse(r.body.toString()) as { method: string; url: string; headers: Record<string, string>; body: number }

/** Splits an error page into its parts. */
function page(r: Res): { first: string; code: string; message: string; hint: string } {
  const lines = r.body.toString().split('\n')
  const i = lines[2]!.indexOf(': ')
  return { first: lines[0]!, code: lines[2]!.slice(0, i), message: lines[2]!.slice(i + 2), hint: lines[4] ?? '' }
}

const MIB = 1024 * 1024
// Checksums here; that the gateway does not buffer bodies is measured on a real daemon in test/access/cli.test.ts
// (in one process the host's buffering would be counted too).
const LARGE = process.env.WARREN_TEST_GIB === '1' ? 1024 * MIB : 256 * MIB

/**
 * A TCP service exposed on `p.host` as `name` that calls `answer` for each request's bytes and records how each
 * of its connections ended: `fin` for a clean close, else the socket error's code.
 */
async function endingsService(
  p: Pair,
  name: string,
  answer: (s: Socket) => void,
): Promise<{ ends: string[]; connections(): number; close(): void }> {
  const ends: string[] = []
  let connections = 0
  const server = createServer((s) => {
    connections++
    s.on('data', () => answer(s))
    s.on('end', () => {
      ends.push('fin')
      s.end()
    })
    s.on('error', (err: Error & { code?: string }) => ends.push(err.code ?? err.message))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  p.host.expose(name, `/tcp/${(server.address() as { port: number }).port}`)
  return { ends, connections: () => connections, close: () => server.close() }
}

forEachEngine((engine, label) =>
  describe(`gateway: requests and bodies ${label}`, () => {
    let p: Pair
    before(async () => {
      p = await startPair({ gatewayFastPath: FAST_PATH[engine] })
    })
    after(() => p.stop())

    it('GET /http/<alias>/<service>/<path>?<query>: path, query, Host and forwarding headers', async () => {
      const r = await send(p.access, '/http/n1/web/info/a%20b?x=1&y=%C3%A9&z')
      assert.equal(r.status, 200)
      const got = json(r)
      assert.equal(got.url, '/info/a%20b?x=1&y=%C3%A9&z')
      assert.equal(got.headers.host, `web.${p.hostBase36}.warren`)
      assert.equal(got.headers['x-forwarded-host'], p.access)
      assert.equal(got.headers['x-forwarded-proto'], 'http')
      assert.equal(got.headers['x-forwarded-for'], '127.0.0.1')
      assert.equal(got.headers['x-forwarded-prefix'], '/http/n1/web')
      assert.equal(got.headers.forwarded, `for=127.0.0.1;proto=http;host="${p.access}"`)
    })

    it('the service root, by base58 id, base36 id and ticket', async () => {
      for (const node of [p.host.peerId.toString(), p.hostBase36, p.host.identity().ticket]) {
        const r = await send(p.access, `/http/${node}/web/info`)
        assert.equal(r.status, 200)
        assert.equal(json(r).url, '/info')
      }
      const root = await send(p.access, '/http/n1/web')
      assert.equal(json(root).url, '/')
    })

    it("Kubo's /p2p/<node>/x/<service>/http/<path> form", async () => {
      const r = await send(p.access, '/p2p/n1/x/web/http/info?k=1')
      assert.equal(r.status, 200)
      assert.equal(json(r).url, '/info?k=1')
      assert.equal(json(r).headers['x-forwarded-prefix'], '/p2p/n1/x/web/http')
    })

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      it(`${method} with a binary body (all 256 byte values) comes back byte for byte`, async () => {
        const body = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256))
        const r = await send(p.access, '/http/n1/web/echo', {
          method,
          body,
          headers: { 'content-type': 'application/octet-stream' },
        })
        assert.equal(r.status, 200)
        assert.equal(r.headers['content-type'], 'application/octet-stream')
        assert.equal(sha256(r.body), sha256(body))
        const info = json(await send(p.access, '/http/n1/web/info', { method, body }))
        assert.equal(info.method, method)
        assert.equal(info.body, body.length)
      })
    }

    it('curl uploads with Expect: 100-continue through the gateway and the proxy (to a type http service)', async () => {
      const data = Buffer.from(Array.from({ length: 3 * MIB }, (_, i) => (i * 7) % 256))
      const file = join(await mkdtemp(join(tmpdir(), 'warren-up-')), 'up.bin')
      await writeFile(file, data)
      for (const args of [
        [`http://${p.access}/http/n1/web/hash`],
        ['-x', `http://${p.access}`, 'http://hweb.n1.warren/hash'],
      ]) {
        const r = await curl(['-v', '--data-binary', `@${file}`, ...args])
        assert.equal(r.code, 0, r.stderr)
        assert.match(r.stderr, /HTTP\/1\.1 100 Continue/)
        assert.deepEqual(JSON.parse(r.stdout), { bytes: data.length, sha256: sha256(data) })
      }
      await rm(dirname(file), { recursive: true, force: true })
    })

    it('HEAD and OPTIONS pass through', async () => {
      const head = await send(p.access, '/http/n1/web/info', { method: 'HEAD' })
      assert.equal(head.status, 200)
      assert.equal(head.body.length, 0)
      const options = await send(p.access, '/http/n1/web/info', { method: 'OPTIONS' })
      assert.equal(json(options).method, 'OPTIONS')
    })

    it(`uploads ${LARGE / MIB} MiB chunked, streamed, with matching SHA-256`, async () => {
      const h = createHash('sha256')
      const chunk = 4 * MIB
      const r = await send(p.access, '/http/n1/web/hash', {
        method: 'POST',
        body: async function* () {
          for (let off = 0; off < LARGE; off += chunk) {
            const b = patternBytes(off, chunk)
            h.update(b)
            yield b
          }
        },
      })
      assert.equal(r.status, 200)
      assert.deepEqual(JSON.parse(r.body.toString()), { bytes: LARGE, sha256: h.digest('hex') })
    })

    it(`downloads ${LARGE / MIB} MiB streamed, with matching SHA-256`, async () => {
      const got = await hashedGet(p.access, `/http/n1/web/bytes?n=${LARGE}`)
      const want = createHash('sha256')
      for (let off = 0; off < LARGE; off += 4 * MIB) want.update(patternBytes(off, Math.min(4 * MIB, LARGE - off)))
      assert.equal(got.bytes, LARGE)
      assert.equal(got.sha, want.digest('hex'))
    })

    it('100 concurrent requests all succeed with their own answers', async () => {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, k) => send(p.access, `/http/n1/web/info?k=${k}`)),
      )
      results.forEach((r, k) => {
        assert.equal(r.status, 200)
        assert.equal(json(r).url, `/info?k=${k}`)
      })
    })

    it('keep-alive on the client side, and one pooled service stream for sequential requests', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      await send(p.access, '/http/n1/web/info', { agent }) // warm the pool
      const before = p.host.status().streams.total
      const rs: Res[] = []
      for (let k = 0; k < 10; k++) rs.push(await send(p.access, `/http/n1/web/info?seq=${k}`, { agent }))
      agent.destroy()
      assert.ok(rs.every((r) => r.status === 200 && r.reused))
      assert.equal(p.host.status().streams.total - before, 0, 'no new service stream for sequential requests')
    })

    it('a pooled stream the service closed is retried once on a fresh one for GET, not for a POST with a body', async () => {
      // answers the first request of each connection (keep-alive, no hint) and hangs up on the second unanswered,
      // as a server whose idle timer fires just as the request arrives
      let connections = 0
      const sockets = new Set<Socket>()
      const flaky = createServer((s) => {
        connections++
        sockets.add(s)
        let seen = 0
        s.on('data', () => {
          if (++seen === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
          else s.destroy()
        })
        s.on('error', () => {})
      })
      await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve))
      const port = (flaky.address() as { port: number }).port
      p.host.expose('flaky', `/tcp/${port}`)
      p.host.expose('flakypost', `/tcp/${port}`) // its own pool
      try {
        assert.equal((await send(p.access, '/http/n1/flaky/a')).status, 200)
        const second = await send(p.access, '/http/n1/flaky/b')
        assert.equal(second.status, 200, second.body.toString())
        assert.equal(second.body.toString(), 'ok')
        assert.equal(connections, 2, 'the retry went over a second stream')
        assert.equal((await send(p.access, '/http/n1/flakypost/a')).status, 200)
        const post = await send(p.access, '/http/n1/flakypost/c', { method: 'POST', body: Buffer.from('once only') })
        assert.equal(post.status, 502, `${connections} connections: ${post.body}`)
        assert.equal(page(post).code, 'ERR_PROTOCOL')
        assert.equal(connections, 3, 'no second attempt for the POST')
      } finally {
        for (const s of sockets) s.destroy()
        flaky.close()
      }
    })

    it("an idle pooled stream is let go before the service's Keep-Alive hint runs out, with a clean close", async () => {
      // answers every request with a 3-s hint: the gateway keeps the stream 1 s, then closes it with a FIN
      const hinted = await endingsService(p, 'hinted', (s) =>
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=3\r\n\r\nok'),
      )
      const { ends } = hinted
      try {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 })
        assert.equal((await send(p.access, '/http/n1/hinted/a', { agent })).status, 200)
        const second = await send(p.access, '/http/n1/hinted/b', { agent })
        assert.equal(second.status, 200)
        assert.equal(hinted.connections(), 1, 'the second request reused the pooled stream')
        await eventually(() => ends.length > 0, { timeoutMs: 4_000 })
        assert.deepEqual(ends, ['fin'], 'a FIN, not a reset')
        assert.equal((await send(p.access, '/http/n1/hinted/c', { agent })).status, 200)
        assert.equal(hinted.connections(), 2, 'a fresh stream after the pooled one was let go')
        agent.destroy()
      } finally {
        hinted.close()
      }
    })

    it('a stream whose response a slow client held back is not kept past the time the service keeps it', async () => {
      // 32 MiB with a 3-s hint, read by a client that first waits 2.5 s: the service's idle timer started long
      // before the client had it all, so the next request must not meet a stream the service is closing
      const big = Buffer.alloc(32 * MIB, 7)
      const hinted = await endingsService(p, 'heldback', (s) => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\nKeep-Alive: timeout=3\r\n\r\n`)
        s.write(big)
      })
      const { ends } = hinted
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      const get = (pauseMs: number) => hashedGet(p.access, '/http/n1/heldback/', { agent, pauseMs })
      try {
        const want = sha256(big)
        assert.deepEqual(await get(2_500), { bytes: big.length, sha: want })
        assert.deepEqual(await get(0), { bytes: big.length, sha: want })
        assert.equal(hinted.connections(), 2, 'the second request went over a fresh stream')
        await eventually(() => ends.length > 0, { timeoutMs: 4_000 })
        assert.deepEqual(ends, ['fin'], 'the held-back stream was let go with a FIN')
      } finally {
        agent.destroy()
        hinted.close()
      }
    })

    it('a Location starting with / is rewritten under the gateway prefix', async () => {
      const r = await send(p.access, '/http/n1/web/redirect')
      assert.equal(r.status, 302)
      assert.equal(r.headers.location, '/http/n1/web/info?from=redirect')
    })

    it('a "type": "http" service gets X-Warren-Peer = caller id; a forged one is dropped', async () => {
      const r = await send(p.access, '/http/n1/hweb/info', {
        headers: { 'X-Warren-Peer': 'forged', 'x-warren-peer': 'x' },
      })
      const got = json(r)
      assert.equal(got.headers['x-warren-peer'], p.client.peerId.toString())
      assert.equal(
        (got as unknown as { rawHeaders: string[] }).rawHeaders.filter((h) => /^x-warren-peer$/i.test(h)).length,
        1,
      )
      const plain = json(await send(p.access, '/http/n1/web/info', { headers: { 'X-Warren-Peer': 'forged' } }))
      assert.equal(plain.headers['x-warren-peer'], 'forged', 'a tcp service gets the bytes as sent')
    })
  }),
)

forEachEngine((engine, label) =>
  describe(`gateway: failures with their exact pages ${label}`, () => {
    let p: Pair
    before(async () => {
      p = await startPair({
        gatewayFastPath: FAST_PATH[engine],
        client: { proxy: { maxStreamsPerPeer: 2, headersTimeoutMs: 600 }, gateway: { responseTimeoutMs: 800 } },
      })
    })
    after(() => p.stop())

    const cases: [string, number, string, RegExp][] = [
      ['/http/n1', 400, 'ERR_BAD_GATEWAY_PATH', /^gateway path "\/http\/n1" names no service$/],
      ['/http/', 400, 'ERR_BAD_GATEWAY_PATH', /^gateway path "\/http\/" names no node$/],
      [
        '/http/n1/Bad_Name/',
        400,
        'ERR_BAD_GATEWAY_PATH',
        /^gateway path "\/http\/n1\/Bad_Name\/" names the service "Bad_Name", which is not a valid service name$/,
      ],
      [
        '/p2p/n1/web/x',
        400,
        'ERR_BAD_GATEWAY_PATH',
        /^gateway path "\/p2p\/n1\/web\/x" needs \/x\/<service>\/http\/ after the node$/,
      ],
      ['/http/nobody/web/', 404, 'ERR_UNKNOWN_PEER', /^"nobody" is not a node id, a ticket, or an alias in peers$/],
      ['/http/12D3KooWnope/web/', 404, 'ERR_BAD_NODE_ID', /^"12D3KooWnope" is not a valid node id/],
      ['/http/n1/nope/', 404, 'ERR_UNKNOWN_SERVICE', /^node 12D3KooW\w+ has no service "nope"$/],
      ['/http/n1/private/', 403, 'ERR_NOT_AUTHORIZED', /^node 12D3KooW\w+ does not allow this node to use "private"$/],
      [
        '/http/n1/down/',
        502,
        'ERR_TARGET_UNREACHABLE',
        /could not reach the target of "down": connect to 127\.0\.0\.1:\d+ failed: ECONNREFUSED$/,
      ],
      ['/http/ghost/web/', 502, 'ERR_DIAL_FAILED', /^could not connect to node 12D3KooW\w+: /],
      ['/http/lost/web/', 502, 'ERR_NO_ADDRESSES', /^no address is known for node 12D3KooW\w+$/],
      ['/http/n1/raw/', 502, 'ERR_PROTOCOL', /^service "raw" on node 12D3KooW\w+ did not answer with valid HTTP/],
      ['/http/n1/web/slow', 504, 'ERR_TIMEOUT', /^service "web" on node 12D3KooW\w+ sent no response within 800 ms$/],
      [
        '/http/n1/web/bigheader?n=20000',
        502,
        'ERR_HEADERS_TOO_LARGE',
        /^service "web" on node 12D3KooW\w+ sent a response head larger than allowed$/,
      ],
    ]
    for (const [path, status, code, message] of cases) {
      it(`${path} → ${status} ${code}`, async () => {
        const r = await send(p.access, path)
        assert.equal(r.status, status, r.body.toString())
        assert.equal(r.headers['x-warren-error'], code)
        assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
        const pg = page(r)
        assert.match(pg.first, new RegExp(`^${status} `))
        assert.equal(pg.code, code)
        assert.match(pg.message, message)
        assert.match(pg.hint, /^What to do: \S/)
      })
    }

    it('past proxy.maxStreamsPerPeer the next request gets 503 ERR_TOO_MANY_STREAMS', async () => {
      const slow = [send(p.access, '/http/n1/web/slow'), send(p.access, '/http/n1/web/slow')]
      await eventually(() => p.host.status().streams.active >= 2, { message: 'both slow requests hold a stream' })
      const r = await send(p.access, '/http/n1/web/info')
      assert.equal(r.status, 503)
      assert.equal(page(r).code, 'ERR_TOO_MANY_STREAMS')
      assert.match(page(r).message, /^the access port already has 2 streams open to node 12D3KooW\w+$/)
      for (const s of await Promise.all(slow)) assert.equal(s.status, 504)
      assert.equal((await send(p.access, '/http/n1/web/info')).status, 200, 'slots are given back')
    })

    it('a request head that does not arrive within proxy.headersTimeoutMs gets 408 ERR_TIMEOUT', async () => {
      const i = p.access.lastIndexOf(':')
      const s = connect({ host: '127.0.0.1', port: Number(p.access.slice(i + 1)) })
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      s.write('GET /http/n1/web/info HTTP/1.1\r\nHost: x\r\n')
      await new Promise((r) => s.once('close', r))
      const text = Buffer.concat(chunks).toString()
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
      assert.match(text, /ERR_TIMEOUT: the request head did not arrive within 600 ms/)
    })
  }),
)

describe('gateway: disabled', () => {
  let p: Pair
  before(async () => {
    p = await startPair({ client: { gateway: { enabled: false } } })
  })
  after(() => p.stop())

  it('answers 404 saying how to turn it on, while the proxy still works', async () => {
    const r = await send(p.access, '/http/n1/web/info')
    assert.equal(r.status, 404)
    assert.equal(r.headers['x-warren-error'], 'ERR_GATEWAY_DISABLED')
    assert.equal(page(r).message, 'the HTTP gateway is disabled on this node (gateway.enabled is false)')
    assert.match(page(r).hint, /Set "gateway": \{ "enabled": true \} in config\.json/)
  })
})
