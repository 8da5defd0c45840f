/**
 * The access port as a proxy, with curl as the client: SOCKS5 (--socks5-hostname) and the HTTP proxy
 * (absolute-form and CONNECT) to an HTTP service, a `"type": "http"` service and a raw TCP service on a
 * non-HTTP port; the PAC file; every refusal with the exact error the client sees.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { SocksReply } from '../../src/http/error-replies.ts'
import { FAST_PATH, forEachEngine } from '../gateway/engines.ts'
import { raw, req } from '../gateway/origins-kit.ts'
import { curl, parseCurlResponse, socks5Connect } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'

forEachEngine((engine, label) =>
  describe(`access port: SOCKS5 and HTTP proxy with curl ${label}`, () => {
    let p: Pair
    before(async () => {
      p = await startPair({ gatewayFastPath: FAST_PATH[engine] })
    })
    after(() => p.stop())

    const info = (body: string) =>
      JSON.parse(body) as { method: string; url: string; headers: Record<string, string>; body: number }

    it('SOCKS5 --socks5-hostname reaches an HTTP service by alias on any port', async () => {
      const r = await curl(['--socks5-hostname', p.access, 'http://web.n1.warren:8080/info?via=socks'])
      assert.equal(r.code, 0, r.stderr)
      const got = info(r.stdout)
      assert.equal(got.url, '/info?via=socks')
      assert.equal(got.headers.host, 'web.n1.warren:8080')
    })

    it('SOCKS5 reaches a service by the base36 node id', async () => {
      const r = await curl(['--socks5-hostname', p.access, `http://web.${p.hostBase36}.warren/info`])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(info(r.stdout).url, '/info')
    })

    it('SOCKS5 to a "type": "http" service: X-Warren-Peer is the caller, a forged one is dropped', async () => {
      const r = await curl(['--socks5-hostname', p.access, '-H', 'X-Warren-Peer: forged', 'http://hweb.n1.warren/info'])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(info(r.stdout).headers['x-warren-peer'], p.client.peerId.toString())
    })

    it('SOCKS5 carries a raw TCP protocol on a non-HTTP port (curl telnet://)', async () => {
      const r = await curl(['--socks5-hostname', p.access, 'telnet://raw.n1.warren:7777'], {
        input: Buffer.from('ping\n'),
      })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, 'hello from raw tcp\necho: ping\n')
    })

    it('HTTP proxy, absolute form: Host kept, X-Forwarded-For/-Proto/-Host and Forwarded added', async () => {
      const r = await curl(['-x', `http://${p.access}`, 'http://web.n1.warren/info?q=1&r=2'])
      assert.equal(r.code, 0, r.stderr)
      const got = info(r.stdout)
      assert.equal(got.url, '/info?q=1&r=2')
      assert.equal(got.headers.host, 'web.n1.warren')
      assert.equal(got.headers['x-forwarded-for'], '127.0.0.1')
      assert.equal(got.headers['x-forwarded-proto'], 'http')
      assert.equal(got.headers['x-forwarded-host'], 'web.n1.warren')
      assert.equal(got.headers.forwarded, 'for=127.0.0.1;proto=http;host=web.n1.warren')
      assert.equal(got.headers['proxy-connection'], undefined)
    })

    it('HTTP proxy keeps the client connection alive across requests', async () => {
      const url = 'http://web.n1.warren/info'
      const r = await curl(['-v', '-x', `http://${p.access}`, url, url, url])
      assert.equal(r.code, 0, r.stderr)
      assert.equal((r.stderr.match(/Re-using existing connection|Reusing existing/g) ?? []).length, 2, r.stderr)
    })

    it('HTTP proxy, CONNECT (curl -p): HTTP and a raw TCP service through the tunnel', async () => {
      const h = await curl(['-p', '-x', `http://${p.access}`, 'http://web.n1.warren/info?tunnel=1'])
      assert.equal(h.code, 0, h.stderr)
      assert.equal(info(h.stdout).url, '/info?tunnel=1')
      const t = await curl(['-p', '-x', `http://${p.access}`, 'telnet://raw.n1.warren:5432'], {
        input: Buffer.from('over connect\n'),
      })
      assert.equal(t.code, 0, t.stderr)
      assert.equal(t.stdout, 'hello from raw tcp\necho: over connect\n')
    })

    it('serves the PAC file that sends only .warren through this port', async () => {
      const r = await curl(['-i', `http://${p.access}/proxy.pac`])
      const res = parseCurlResponse(r.stdout)
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-type'], 'application/x-ns-proxy-autoconfig')
      assert.match(res.body, /dnsDomainIs\(host, "\.warren"\)/)
      assert.ok(res.body.includes(`return "PROXY ${p.access}";`))
      assert.ok(res.body.includes('return "DIRECT";'))
    })
  }),
)

forEachEngine((engine, label) =>
  describe(`access port: refusals reach the client in its own protocol ${label}`, () => {
    let p: Pair
    before(async () => {
      p = await startPair({ gatewayFastPath: FAST_PATH[engine] })
    })
    after(() => p.stop())

    /** [host, HTTP status, code, message regexp, SOCKS reply] */
    const cases: [string, number, string, RegExp, number][] = [
      [
        'example.com',
        403,
        'ERR_NOT_WARREN_NAME',
        /^"example\.com" is not a \.warren name: Warren only reaches <service>\.<node>\.warren, it is not an open proxy$/,
        SocksReply.NOT_ALLOWED,
      ],
      [
        'nope.n1.warren',
        404,
        'ERR_UNKNOWN_SERVICE',
        /^node 12D3KooW\w+ has no service "nope"$/,
        SocksReply.CONNECTION_REFUSED,
      ],
      [
        'private.n1.warren',
        403,
        'ERR_NOT_AUTHORIZED',
        /^node 12D3KooW\w+ does not allow this node to use "private"$/,
        SocksReply.NOT_ALLOWED,
      ],
      [
        'down.n1.warren',
        502,
        'ERR_TARGET_UNREACHABLE',
        /^node 12D3KooW\w+ could not reach the target of "down": connect to 127\.0\.0\.1:\d+ failed: ECONNREFUSED$/,
        SocksReply.CONNECTION_REFUSED,
      ],
      [
        'web.nobody.warren',
        404,
        'ERR_UNKNOWN_PEER',
        /^"nobody" is not a node id, a ticket, or an alias in peers$/,
        SocksReply.HOST_UNREACHABLE,
      ],
      [
        'web.ghost.warren',
        502,
        'ERR_DIAL_FAILED',
        /^could not connect to node 12D3KooW\w+: /,
        SocksReply.HOST_UNREACHABLE,
      ],
      [
        'web.lost.warren',
        502,
        'ERR_NO_ADDRESSES',
        /^no address is known for node 12D3KooW\w+$/,
        SocksReply.HOST_UNREACHABLE,
      ],
      [
        'a.web.n1.warren',
        400,
        'ERR_BAD_NAME',
        /^"a\.web\.n1\.warren" has 3 labels before \.warren; use <service>\.<node>\.warren or <node>\.warren$/,
        SocksReply.HOST_UNREACHABLE,
      ],
      ['n1.warren', 400, 'ERR_BAD_NAME', /^"n1\.warren" names a node but no service$/, SocksReply.HOST_UNREACHABLE],
    ]

    for (const [host, status, code, message, socksReply] of cases) {
      it(`${host}: HTTP proxy ${status} ${code}, CONNECT ${status}, SOCKS5 reply ${socksReply}`, async () => {
        const r = await curl(['-i', '-x', `http://${p.access}`, `http://${host}/x`])
        const res = parseCurlResponse(r.stdout)
        assert.equal(res.status, status, r.stdout)
        assert.equal(res.headers['x-warren-error'], code)
        const lines = res.body.split('\n')
        assert.match(lines[0]!, new RegExp(`^${status} `))
        assert.ok(lines[2]!.startsWith(`${code}: `), res.body)
        assert.match(lines[2]!.slice(code.length + 2), message)
        assert.match(lines[4]!, /^What to do: \S/)

        const c = await curl(['-p', '-x', `http://${p.access}`, `http://${host}/x`])
        assert.equal(c.code, 56)
        assert.match(c.stderr, new RegExp(`CONNECT tunnel failed, response ${status}`))

        const s = await socks5Connect(p.access, { host, port: 80 })
        s.socket.destroy()
        assert.equal(s.reply, socksReply)
      })
    }

    it('curl shows the SOCKS5 refusal of a name outside .warren', async () => {
      const r = await curl(['--socks5-hostname', p.access, 'http://example.com/'])
      assert.equal(r.code, 97)
      assert.match(r.stderr, /Can't complete SOCKS5 connection to example\.com\. \(2\)/)
    })

    it('SOCKS5 by IP address: an address that is no Warren service address is refused (not an open proxy)', async () => {
      const v4 = await socks5Connect(p.access, { host: '127.0.0.1', port: 80, atyp: 'ipv4' })
      v4.socket.destroy()
      assert.equal(v4.reply, SocksReply.NOT_ALLOWED)
      const v6 = await socks5Connect(p.access, { host: '::1', port: 80, atyp: 'ipv6' })
      v6.socket.destroy()
      assert.equal(v6.reply, SocksReply.NOT_ALLOWED)
    })

    it('SOCKS5 commands other than CONNECT get "command not supported"', async () => {
      const i = p.access.lastIndexOf(':')
      const { connect } = await import('node:net')
      const s = connect({ host: p.access.slice(0, i), port: Number(p.access.slice(i + 1)) })
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      await new Promise((r) => s.once('connect', r))
      s.write(Buffer.from([5, 1, 0]))
      // BIND (2) to web.n1.warren:80
      const name = Buffer.from('web.n1.warren')
      s.write(Buffer.concat([Buffer.from([5, 2, 0, 3, name.length]), name, Buffer.from([0, 80])]))
      await new Promise((r) => s.once('close', r))
      assert.deepEqual([...Buffer.concat(chunks)], [5, 0, 5, SocksReply.COMMAND_NOT_SUPPORTED, 0, 1, 0, 0, 0, 0, 0, 0])
    })

    it('a request head over proxy.maxHeaderBytes gets 431 ERR_HEADERS_TOO_LARGE', async () => {
      const r = await curl(['-i', '-H', `X-Big: ${'x'.repeat(20_000)}`, `http://${p.access}/http/n1/web/info`])
      const res = parseCurlResponse(r.stdout)
      assert.equal(res.status, 431)
      assert.equal(res.headers['x-warren-error'], 'ERR_HEADERS_TOO_LARGE')
      assert.match(res.body, /ERR_HEADERS_TOO_LARGE: the request head is larger than 16384 bytes/)
    })

    it('an unknown page on the access port gets 404 naming the forms', async () => {
      const r = await curl(['-i', `http://${p.access}/nothing-here`])
      const res = parseCurlResponse(r.stdout)
      assert.equal(res.status, 404)
      assert.equal(res.headers['x-warren-error'], 'ERR_NO_SUCH_PAGE')
      assert.match(res.body, /ERR_NO_SUCH_PAGE: the Warren access port has no page "\/nothing-here"\n/)
      assert.match(res.body, /What to do: Use \/http\/<node>\/<service>\/<path> \(gateway\), \/proxy\.pac/)
    })

    it('https:// in absolute form is refused with the way to do it', async () => {
      const r = await curl(['-i', '--request-target', 'https://web.n1.warren/', `http://${p.access}`])
      const res = parseCurlResponse(r.stdout)
      assert.equal(res.status, 400)
      assert.equal(res.headers['x-warren-error'], 'ERR_BAD_REQUEST')
      assert.match(res.body, /ERR_BAD_REQUEST: the HTTP proxy carries http:\/\/ URLs, not https:\/\/\n/)
    })

    it('an absolute-form URL that is not valid, and a CONNECT target that is not host:port, get 400 ERR_BAD_REQUEST', async () => {
      const url = await raw(p.access, req('GET', 'http://[bad/x', 'x'))
      assert.equal(url.status, 400)
      assert.equal(url.headers['x-warren-error'], 'ERR_BAD_REQUEST')
      assert.equal(
        url.body.toString(),
        '400 Bad Request\n\nERR_BAD_REQUEST: "http://[bad/x" is not a valid URL\n\nWhat to do: Send http://<service>.<node>.warren/…\n',
      )
      const connect = await raw(p.access, req('CONNECT', 'web.n1.warren', 'web.n1.warren'))
      assert.equal(connect.status, 400)
      assert.equal(connect.headers['x-warren-error'], 'ERR_BAD_REQUEST')
      assert.equal(
        connect.body.toString(),
        '400 Bad Request\n\nERR_BAD_REQUEST: CONNECT target "web.n1.warren" is not host:port\n\n' +
          'What to do: Send CONNECT <service>.<node>.warren:<port>.\n',
      )
    })

    it('an Upgrade to a page the access port does not have gets 404 ERR_NO_SUCH_PAGE', async () => {
      // raw() adds `Connection: close`; with `Connection: Upgrade` too, the request is still an Upgrade
      const r = await raw(
        p.access,
        req('GET', '/nothing-here', p.access, { Connection: 'Upgrade', Upgrade: 'websocket' }),
      )
      assert.equal(r.status, 404)
      assert.equal(r.headers['x-warren-error'], 'ERR_NO_SUCH_PAGE')
      assert.match(
        r.body.toString(),
        /^404 Not Found\n\nERR_NO_SUCH_PAGE: the Warren access port has no page "\/nothing-here"\n/,
      )
    })
  }),
)

describe('access port: bursts of new streams', () => {
  let p: Pair
  before(async () => {
    p = await startPair()
  })
  after(() => p.stop())

  it('64 simultaneous SOCKS5 tunnels on a fresh node pair all connect (opens queued below yamux early-stream limit)', async () => {
    const results = await Promise.all(
      Array.from({ length: 64 }, async (_, k) => {
        const { reply, socket } = await socks5Connect(p.access, { host: 'raw.n1.warren', port: 1 })
        if (reply !== 0) return `reply ${reply}`
        socket.write(`burst ${k}\n`)
        let text = ''
        for await (const c of socket) text += c
        return text
      }),
    )
    for (const [k, text] of results.entries()) assert.equal(text, `hello from raw tcp\necho: burst ${k}\n`)
  })
})
