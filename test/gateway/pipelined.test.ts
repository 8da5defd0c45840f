/**
 * HTTP/1.1 pipelining through the access port: a dozen requests written at once on one connection (downloads of
 * many sizes, uploads with a length and chunked, one with `Expect: 100-continue` behind a large download, an
 * HTTP/1.0 keep-alive request, a last one with `Connection: close`) must come back as as many responses, in order,
 * each whole (SHA-256), with a `100 Continue` only right before the head of the response it belongs to; then the
 * connection closes. Real daemons on both paths of the gateway and of the HTTP proxy, and Node's HTTP service.
 *
 * And `continueInOrder` itself, on Node's HTTP server with a raw client: a pipelined `Expect: 100-continue` request
 * behind a slow response gets its 100 after that response and before its own head (a canary shows that Node alone
 * puts the 100 inside the body), the requests behind it are still answered, and a request whose client went away
 * while it waited is never handled.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import { continueInOrder } from '../../src/http/continue-in-order.ts'
import { eventually } from '../support/eventually.ts'
import { useChaosPair } from '../support/http-chaos.ts'
import { ByteSource, listen } from '../support/transfer.ts'

const KiB = 1024

interface Response {
  status: string
  body: Buffer
}

/** Splits what a connection received into responses (Content-Length framing; 1xx heads have no body). */
function responses(bytes: Buffer): { list: Response[]; rest: number } {
  const list: Response[] = []
  let at = 0
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', at)
    if (end < 0) break
    const head = bytes.subarray(at, end).toString('latin1')
    const nl = head.indexOf('\r\n')
    const status = nl < 0 ? head : head.slice(0, nl)
    if (/^HTTP\/1\.1 1\d\d /.test(status)) {
      list.push({ status, body: Buffer.alloc(0) })
      at = end + 4
      continue
    }
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)
    if (length === null || end + 4 + Number(length[1]) > bytes.length) break
    list.push({ status, body: bytes.subarray(end + 4, end + 4 + Number(length[1])) })
    at = end + 4 + Number(length[1])
  }
  return { list, rest: bytes.length - at }
}

/** Writes `requests` at once on a connection to `port`; resolves with everything received once the server closes. */
async function pipeline(port: number, requests: string[]): Promise<Buffer> {
  const s = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  s.on('data', (d: Buffer) => chunks.push(d))
  s.write(requests.join(''))
  const closed = once(s, 'close')
  const timer = setTimeout(() => s.destroy(new Error('no close within 20 s')), 20_000)
  try {
    await closed
  } finally {
    clearTimeout(timer)
  }
  return Buffer.concat(chunks)
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

describe('pipelined requests through the access port', () => {
  const chaos = useChaosPair()

  for (const [path, form] of [
    ['fast', 'gateway'],
    ['full', 'gateway'],
    ['fast', 'HTTP proxy'],
    ['full', 'HTTP proxy'],
  ] as const) {
    it(`${form}, ${path} path: every response whole and in order, a 100 only before its own response`, async () => {
      const access = path === 'fast' ? chaos.pair().fast : chaos.pair().full
      const port = Number(access.slice(access.lastIndexOf(':') + 1))
      const line = (method: string, p: string, version = '1.1'): string =>
        form === 'gateway'
          ? `${method} /http/a/web${p} HTTP/${version}\r\nHost: ${access}\r\n`
          : `${method} http://web.a.warren${p} HTTP/${version}\r\nHost: web.a.warren\r\n`
      const sizes = [1000, 70 * KiB, 5, 300 * KiB, 0, 12_345]
      const upload = 'hello world'
      const requests = [
        ...sizes.map((n, k) => `${line('GET', `/blob/${n}/${k}`)}\r\n`),
        `${line('POST', '/hash')}Content-Length: ${upload.length}\r\n\r\n${upload}`,
        `${line('POST', '/hash')}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
        `${line('GET', `/blob/${2048 * KiB}/7`)}\r\n`,
        `${line('POST', '/hash')}Expect: 100-continue\r\nContent-Length: ${upload.length}\r\n\r\n${upload}`,
        `${line('GET', '/blob/33/3', '1.0')}Connection: keep-alive\r\n\r\n`,
        `${line('GET', '/blob/77/9')}Connection: close\r\n\r\n`,
      ]
      const { list, rest } = responses(await pipeline(port, requests))
      const hashed = `${upload.length} ${sha(upload)}`
      const want = [
        ...sizes.map((n, k) => `HTTP/1.1 200 OK ${ByteSource.digest(n, k)}`),
        `HTTP/1.1 200 OK ${sha(hashed)}`,
        `HTTP/1.1 200 OK ${sha(hashed)}`,
        `HTTP/1.1 200 OK ${ByteSource.digest(2048 * KiB, 7)}`,
        'HTTP/1.1 100 Continue',
        `HTTP/1.1 200 OK ${sha(hashed)}`,
        `HTTP/1.1 200 OK ${ByteSource.digest(33, 3)}`,
        `HTTP/1.1 200 OK ${ByteSource.digest(77, 9)}`,
      ]
      const got = list.map((r) => (r.status.includes(' 100 ') ? r.status : `${r.status} ${sha(r.body)}`))
      // a 100 is optional for a server, but where it comes it must be right before its own response
      const withoutContinue = want.filter((w) => !w.includes(' 100 '))
      assert.ok(
        JSON.stringify(got) === JSON.stringify(want) || JSON.stringify(got) === JSON.stringify(withoutContinue),
        got.join('\n'),
      )
      assert.equal(rest, 0, 'nothing after the last response')
    })
  }
})

/** Node's HTTP server answering each request with `<url> <body bytes>`, /slow last; with `continueInOrder` or without. */
async function slowFirstServer(ordered: boolean): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(req.url ?? '')
    let n = 0
    req.on('data', (d: Buffer) => {
      n += d.length
    })
    req.on('end', () => {
      // /slow answers last; the head of a request behind it is written while /slow still holds the connection
      setTimeout(
        () => {
          const body = `${req.url} ${n}`
          res.writeHead(200, { 'content-length': body.length })
          res.write(Buffer.from(body)) // a Buffer: Node puts the head in front of what the response buffered
          res.end()
        },
        req.url === '/slow' ? 200 : 5,
      )
    })
  })
  if (ordered) continueInOrder(server)
  const l = await listen(server as never)
  return { port: l.port, seen, close: l.close }
}

const SLOW_THEN_EXPECT = [
  'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
  'POST /later HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nworld',
]

describe('continueInOrder on a pipelined connection', () => {
  it("canary: Node alone writes the 100 of a request behind a slow response inside that request's response", async () => {
    const s = await slowFirstServer(false)
    try {
      const got = (
        await pipeline(s.port, [...SLOW_THEN_EXPECT, 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
      )
        .toString('latin1')
        .replace(/\r\nDate: [^\r]*/g, '')
      assert.match(
        got,
        /Content-Length: 8\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nHTTP\/1\.1 100 Continue\r\n\r\n\/later 5/i,
      )
    } finally {
      await s.close()
    }
  })

  it('a 100 behind a slow response comes after it and before its own head; the requests behind are answered', async () => {
    const s = await slowFirstServer(true)
    try {
      const got = await pipeline(s.port, [
        ...SLOW_THEN_EXPECT,
        'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ])
      const { list, rest } = responses(got)
      assert.deepEqual(
        list.map((r) => `${r.status} ${r.body.toString()}`),
        ['HTTP/1.1 200 OK /slow 5', 'HTTP/1.1 100 Continue ', 'HTTP/1.1 200 OK /later 5', 'HTTP/1.1 200 OK /last 0'],
      )
      assert.equal(rest, 0)
    } finally {
      await s.close()
    }
  })

  it('a request alone on its connection gets its 100 at once, before its response', async () => {
    const s = await slowFirstServer(true)
    try {
      const got = await pipeline(s.port, [
        'POST /alone HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
      ])
      assert.deepEqual(
        responses(got).list.map((r) => `${r.status} ${r.body.toString()}`),
        ['HTTP/1.1 100 Continue ', 'HTTP/1.1 200 OK /alone 3'],
      )
    } finally {
      await s.close()
    }
  })

  it('a client that goes away while its request waits behind a slow one: that request is never handled', async () => {
    const s = await slowFirstServer(true)
    try {
      const c = connect(s.port, '127.0.0.1')
      c.on('error', () => {})
      c.write(SLOW_THEN_EXPECT.join(''))
      await eventually(() => s.seen.includes('/slow'), { message: 'the first request was handled' })
      c.resetAndDestroy()
      // /slow would have answered 200 ms in, and /later been handled then
      await new Promise((r) => setTimeout(r, 400))
      assert.deepEqual(s.seen, ['/slow'])
    } finally {
      await s.close()
    }
  })
})
