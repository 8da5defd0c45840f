/**
 * Fuzzing the gateway's text formats: routing paths (src/gateway/paths.ts) round-trip and any request target
 * parses or throws ERR_BAD_GATEWAY_PATH; the fast path's rewritten heads (src/gateway/fast/heads.ts) are well-formed for
 * any headers a client or service can send (one line per header, no hop-by-hop or Connection-named header passes,
 * Host and X-Forwarded-For are the gateway's), and a real HTTP server parses them to the same headers.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { removeDotSegments } from '../../src/gateway/dot-segments.ts'
import { clientResponseHead, upstreamRequestHead } from '../../src/gateway/fast/heads.ts'
import { parseGatewayPath } from '../../src/gateway/paths.ts'
import { HOP_BY_HOP } from '../../src/http/forward-headers.ts'
import { fuzz, fuzzAsync, nastyString, parsesOrRefuses } from './fuzz-kit.ts'

const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const service = fc.stringMatching(SERVICE)
const node = fc.oneof(
  service,
  fc.string({ minLength: 1, maxLength: 20 }),
  fc.stringMatching(/^k51qzi5uqu5[a-z0-9]{51}$/),
  fc.stringMatching(/^warren[a-z2-7]{20,60}$/),
)
/** Path segments and a query as a client may send them (no `?` or `#` in the path). */
const rest = fc
  .array(fc.stringMatching(/^[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}$/), { maxLength: 4 })
  .map((s) => s.join('/'))
const query = fc.oneof(fc.constant(''), fc.stringMatching(/^\?[ -~]{0,20}$/))

describe('fuzz: gateway paths', () => {
  it('/http/, /p2p/…/x/…/http/ and /p2p/…/http/ forms round trip', () => {
    fuzz(
      'gateway path round trip',
      fc.tuple(fc.constantFrom(0, 1, 2), node, service, rest, query),
      ([form, n, s, r, q]) => {
        const enc = encodeURIComponent(n)
        const prefix = form === 0 ? `/http/${enc}/${s}` : form === 1 ? `/p2p/${enc}/x/${s}/http` : `/p2p/${enc}/http`
        const t = parseGatewayPath(`${prefix}/${r}${q}`)
        // dot segments are resolved (RFC 3986), never above the prefix
        assert.deepEqual(t, { node: n, service: form === 2 ? 'http' : s, path: removeDotSegments(`/${r}${q}`), prefix })
      },
      { runs: 300 },
    )
  })

  it('any request target parses to a route or is ERR_BAD_GATEWAY_PATH', () => {
    fuzz(
      'gateway path parse',
      fc.oneof(
        fc.string(),
        nastyString(['/', '/http', '/p2p', '/x', 'web', 'n1', '%', '%41', '%E0%A4%A', '?', '//', '..']),
      ),
      (url) =>
        parsesOrRefuses(
          () => parseGatewayPath(url),
          { code: 'ERR_BAD_GATEWAY_PATH' },
          (t) => {
            assert.ok(SERVICE.test(t.service), `service ${JSON.stringify(t.service)}`)
            assert.ok(t.node.length > 0)
            assert.ok(t.path.startsWith('/'))
            assert.ok(url.startsWith(t.prefix))
          },
        ),
      { runs: 400 },
    )
  })
})

/** Header names: hop-by-hop and gateway-set ones in any case, and arbitrary tokens. */
const headerName = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        'Connection',
        'Keep-Alive',
        'Transfer-Encoding',
        'TE',
        'Upgrade',
        'Proxy-Authorization',
        'Host',
        'X-Forwarded-For',
        'Forwarded',
        'X-Forwarded-Prefix',
        'X-Forwarded-Host',
        'Location',
        'Date',
        'X-Custom',
      ),
      fc.boolean(),
    )
    .map(([n, up]) => (up ? n.toUpperCase() : n.toLowerCase())),
  fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}$/),
)
/** Header values as Node's parser delivers them: HTAB, visible ASCII, obs-text; no CR, LF or NUL; trimmed. */
const headerValue = fc
  .array(
    fc.oneof(
      fc.constantFrom('close', 'keep-alive', 'x-custom', 'chunked', ', ', 'upgrade', '/', '//a', 'te'),
      fc.stringMatching(/^[\t\x20-\x7e\x80-\xff]{0,10}$/),
    ),
    { maxLength: 4 },
  )
  .map((a) => a.join('').trim())
const rawHeaders = fc.array(fc.tuple(headerName, headerValue), { maxLength: 10 }).map((pairs) => pairs.flat())

interface ParsedHead {
  first: string
  headers: [string, string][]
}

/** Splits a head into its first line and header lines, checking it is one well-formed head. */
function parseHead(head: string): ParsedHead {
  assert.ok(head.endsWith('\r\n\r\n'))
  const lines = head.slice(0, -4).split('\r\n')
  for (const l of lines) assert.ok(!/[\r\n\0]/.test(l), `stray line break in ${JSON.stringify(l)}`)
  const headers = lines.slice(1).map((l): [string, string] => {
    const m = /^([^:]+): (.*)$/s.exec(l)
    assert.ok(m !== null && TOKEN.test(m[1]!), `not a header line: ${JSON.stringify(l)}`)
    return [m[1]!, m[2]!]
  })
  return { first: lines[0]!, headers }
}

/** Header names (lower case) that must not pass: hop-by-hop ones and those the Connection headers name. */
function dropped(raw: string[]): Set<string> {
  const out = new Set(HOP_BY_HOP)
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'connection') continue
    for (const t of raw[i + 1]!.split(',')) {
      const n = t.trim().toLowerCase()
      if (n !== '' && n !== 'upgrade') out.add(n)
    }
  }
  return out
}

const ip = fc.oneof(fc.ipV4(), fc.ipV6())
const upstreamSpec = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
  path: fc.stringMatching(/^\/[!-~]{0,30}$/),
  clientIp: ip,
  clientHost: fc.stringMatching(/^[\x21-\x7e\x80-\xff]{1,30}$/),
  host: fc.constantFrom('web.laptop.warren', '127.0.0.1:8080', 'localhost'),
  prefix: fc.option(fc.constantFrom('/http/laptop/web', '/p2p/k51/x/web/http'), { nil: undefined }),
  chunked: fc.boolean(),
})

describe('fuzz: fast-path heads', () => {
  let server: Server
  let port: number
  let seen: (req: IncomingMessage) => void = () => {}
  before(async () => {
    server = createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
      seen(req)
      res.end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as { port: number }).port
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  })

  /** The headers the request head must carry, in order, besides the gateway's own. */
  function kept(raw: string[], prefix: string | undefined): [string, string][] {
    const drop = dropped(raw)
    const out: [string, string][] = []
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!.toLowerCase()
      if (drop.has(n) || ['x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'host'].includes(n))
        continue
      if (prefix !== undefined && n === 'x-forwarded-prefix') continue
      out.push([raw[i]!, raw[i + 1]!])
    }
    return out
  }

  it('request heads: one line per header, hop-by-hop dropped, Host and X-Forwarded-For set', () => {
    fuzz(
      'upstream head',
      fc.tuple(rawHeaders, upstreamSpec),
      ([raw, s]) => {
        const h = parseHead(upstreamRequestHead(raw, s))
        assert.equal(h.first, `${s.method} ${s.path} HTTP/1.1`)
        const drop = dropped(raw)
        const own = new Set(['x-forwarded-for', 'x-forwarded-proto', 'forwarded', 'x-forwarded-host', 'host'])
        if (s.prefix !== undefined) own.add('x-forwarded-prefix')
        if (s.chunked) own.add('transfer-encoding')
        for (const [n] of h.headers) assert.ok(!drop.has(n.toLowerCase()) || own.has(n.toLowerCase()), `${n} passed`)
        const hosts = h.headers.filter(([n]) => n.toLowerCase() === 'host')
        assert.deepEqual(hosts, [['Host', s.host]])
        const xff = h.headers.filter(([n]) => n.toLowerCase() === 'x-forwarded-for')
        assert.equal(xff.length, 1)
        assert.ok(xff[0]![1].endsWith(s.clientIp))
        assert.deepEqual(
          h.headers.filter(([n]) => !own.has(n.toLowerCase())),
          kept(raw, s.prefix),
        )
      },
      { runs: 300 },
    )
  })

  it('response heads: one line per header, Location under the prefix, one Date and Connection', () => {
    fuzz(
      'response head',
      fc.tuple(
        rawHeaders,
        fc.record({
          status: fc.integer({ min: 100, max: 599 }),
          reason: fc.stringMatching(/^[\t\x20-\x7e]{0,20}$/),
          prefix: fc.option(fc.constant('/http/laptop/web'), { nil: undefined }),
          date: fc.constant('Thu, 01 Jan 1970 00:00:00 GMT'),
          chunk: fc.boolean(),
          close: fc.boolean(),
          keepAliveSec: fc.integer({ min: 1, max: 600 }),
        }),
      ),
      ([raw, s]) => {
        const head = clientResponseHead(raw, s)
        assert.ok(head.startsWith(`HTTP/1.1 ${s.status} ${s.reason}\r\n`))
        const h = parseHead(head)
        const conn = h.headers.filter(([n]) => n.toLowerCase() === 'connection')
        assert.equal(conn.length, 1)
        assert.equal(h.headers.filter(([n]) => n.toLowerCase() === 'date').length >= 1, true)
        for (let i = 0; i < raw.length; i += 2) {
          if (raw[i]!.toLowerCase() !== 'location' || dropped(raw).has('location')) continue
          const v = raw[i + 1]!
          const want = s.prefix !== undefined && v.startsWith('/') && !v.startsWith('//') ? s.prefix + v : v
          assert.ok(h.headers.some(([n, x]) => n === raw[i] && x === want))
        }
      },
      { runs: 300 },
    )
  })

  it("a real HTTP server parses the request head to the gateway's headers", async () => {
    await fuzzAsync(
      'upstream head over a socket',
      fc.tuple(rawHeaders, upstreamSpec),
      async ([raw, s]) => {
        const head = upstreamRequestHead(raw, { ...s, chunked: false })
        const got = new Promise<IncomingMessage>((resolve) => {
          seen = resolve
        })
        const sock = connect({ host: '127.0.0.1', port })
        sock.on('data', () => {})
        sock.on('error', () => {})
        sock.write(head)
        const req = await got
        sock.destroy()
        assert.equal(req.method, s.method)
        assert.equal(req.url, s.path)
        assert.equal(req.headers.host, s.host)
        assert.equal(req.rawHeaders.length, parseHead(head).headers.length * 2)
      },
      { runs: 20, kind: 'socket' },
    )
  })
})
