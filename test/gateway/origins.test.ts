/**
 * One origin per service, and the access port as a web server only under its own names: the subdomain gateway
 * (`http://<service>.<node>.localhost:<port>/`), Host checks (DNS rebinding: 421), Fetch Metadata and Origin rules
 * on the path gateway (403, navigations redirected to the service's origin) and on the subdomain gateway, browser
 * requests that name a node by ticket refused without dialing, and dot segments resolved before the service.
 * Real nodes, the real access port, raw sockets (so every header is exactly what the test wrote) and curl.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { WebSocket } from 'ws'
import { validateConfig } from '../../src/config/load.ts'
import type { WarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import { curl, type Pair, parseCurlResponse, patternBytes, sha256, startPair } from '../access/support.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'

interface Reply {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Sends `head` (+ `body`) on a fresh connection with `Connection: close` and reads the whole answer. */
function raw(access: string, head: string, body?: Buffer): Promise<Reply> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)) })
    const got: Buffer[] = []
    socket.on('data', (d: Buffer) => got.push(d))
    socket.on('error', reject)
    socket.on('close', () => {
      let all = Buffer.concat(got)
      // interim answers (100 Continue) come first
      while (/^HTTP\/1\.1 1\d\d /.test(all.subarray(0, 13).toString())) all = all.subarray(all.indexOf('\r\n\r\n') + 4)
      const end = all.indexOf('\r\n\r\n')
      if (end < 0) return reject(new Error(`no response head in ${JSON.stringify(all.toString())}`))
      const lines = all.subarray(0, end).toString('latin1').split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines.slice(1))
        headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      const rest = all.subarray(end + 4)
      const n = headers['content-length'] === undefined ? rest.length : Number(headers['content-length'])
      assert.equal(rest.length, n, 'the whole body arrived')
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers, body: rest })
    })
    socket.write(head.replace(/\r\n$/, 'Connection: close\r\n\r\n'))
    if (body !== undefined) socket.write(body)
  })
}

const req = (
  method: string,
  target: string,
  host: string | undefined,
  extra: Record<string, string> = {},
  version = '1.1',
): string =>
  `${method} ${target} HTTP/${version}\r\n${host === undefined ? '' : `Host: ${host}\r\n`}${Object.entries(extra)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`

/** What the test web app's `/info` saw. */
const info = (r: Reply): { method: string; url: string; headers: Record<string, string> } => {
  assert.equal(r.status, 200, r.body.toString())
  return JSON.parse(r.body.toString())
}

const HOST_HINT =
  'What to do: Use http://127.0.0.1:<port>/, http://<service>.<node>.localhost:<port>/, or add the name to proxy.hosts in config.json.'
const CROSS_HINT =
  'What to do: Open the service at its own origin, http://<service>.<node>.localhost:<port>/; pages of one service cannot use another through the access port.'

const hostRefusal = (host: string, why: string): string =>
  `421 Misdirected Request\n\nERR_HOST_NOT_SERVED: the access port does not serve the host name ${JSON.stringify(host)}: ${why}\n\n${HOST_HINT}\n`

const crossRefusal = (what: string, why: string): string =>
  `403 Forbidden\n\nERR_CROSS_ORIGIN: ${what} refused: ${why}\n\n${CROSS_HINT}\n`

forEachEngine((engine, label) =>
  describe(`gateway origins ${label}`, () => {
    let p: Pair
    let port: number
    /** Requests that reached the web app (every service of the pair but raw/down targets it). */
    let served = 0
    /** A listener standing in for a stranger's ticket address: counts connections, closes them at once. */
    let bait: Server
    let baitConnections = 0
    let ticket: string
    let stranger: string
    let dir: string

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'warren-origins-'))
      p = await startPair({
        gatewayFastPath: FAST_PATH[engine],
        client: { proxy: { hosts: ['gw.example', 'pinned.example:1'] } },
      })
      port = Number(p.access.slice(p.access.lastIndexOf(':') + 1))
      p.web.server.on('request', () => served++)
      bait = createServer((s) => {
        baitConnections++
        s.destroy()
      })
      await new Promise<void>((r) => bait.listen(0, '127.0.0.1', () => r()))
      stranger = peerIdFromPrivateKey(await generateNodeKey()).toString()
      const baitPort = (bait.address() as { port: number }).port
      ticket = encodeTicket({ id: peerIdFromString(stranger), addrs: [multiaddr(`/ip4/127.0.0.1/tcp/${baitPort}`)] })
    })

    after(async () => {
      await p?.stop()
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
      await new Promise<void>((r) => (bait === undefined ? r() : bait.close(() => r())))
    })

    it('the first request for alias n1 (a ticket in peers) may come from a browser: carried, nothing refused', async () => {
      const headers = { 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty' }
      const seen = info(await raw(p.access, req('GET', '/http/n1/web/info', `127.0.0.1:${port}`, headers)))
      assert.equal(seen.headers['sec-fetch-site'], 'same-origin')
    })

    describe('Host names (DNS rebinding)', () => {
      it('refuses a foreign Host on the gateway and the PAC file with 421 and exact pages, reaching nothing', async () => {
        const before = served
        const host = `rebind.example:${port}`
        const why = 'it is not an address, localhost, *.localhost or a name in proxy.hosts'
        for (const target of ['/http/n1/web/info', '/proxy.pac', '/']) {
          const r = await raw(p.access, req('GET', target, host))
          assert.equal(r.status, 421, target)
          assert.equal(r.headers['x-warren-error'], 'ERR_HOST_NOT_SERVED')
          assert.equal(r.body.toString(), hostRefusal(host, why))
        }
        // the same through Node's full HTTP path (Expect sends the fast path's request to it)
        const full = await raw(
          p.access,
          req('POST', '/http/n1/web/info', host, { 'Content-Length': '0', Expect: '100-continue' }),
        )
        assert.equal(full.status, 421)
        assert.equal(full.body.toString(), hostRefusal(host, why))
        assert.equal(served, before, 'no request reached a service')
      })

      it('refuses a missing Host, another port, and a name pinned to another port', async () => {
        // HTTP/1.1 requires Host: Node's server answers 400 itself; HTTP/1.0 reaches the access port's check
        const noHost11 = await raw(p.access, req('GET', '/http/n1/web/info', undefined))
        assert.equal(noHost11.status, 400)
        assert.equal(noHost11.body.toString(), '0\r\n\r\n', 'an empty chunked body')
        const noHost = await raw(p.access, req('GET', '/http/n1/web/info', undefined, {}, '1.0'))
        assert.equal(noHost.status, 421)
        assert.equal(noHost.body.toString(), hostRefusal('(none)', 'the request has no Host header'))
        for (const host of ['localhost:1', '127.0.0.1:1', `web.n1.localhost:${port + 1}`, `pinned.example:${port}`]) {
          const r = await raw(p.access, req('GET', '/http/n1/web/info', host))
          assert.equal(r.status, 421, host)
          assert.equal(r.body.toString(), hostRefusal(host, `the access port is ${port}`))
        }
      })

      it('answers to IP addresses, localhost and proxy.hosts names (any port unless pinned)', async () => {
        for (const host of [
          `127.0.0.1:${port}`,
          `[::1]:${port}`,
          `localhost:${port}`,
          'LOCALHOST.:' + port,
          'gw.example',
          'gw.example:8080',
          'pinned.example:1',
        ]) {
          const seen = info(await raw(p.access, req('GET', '/http/n1/web/info', host)))
          assert.equal(seen.url, '/info', host)
          assert.equal(seen.headers.host, `web.${p.hostBase36}.warren`)
        }
      })

      it('does not apply to proxy requests, whose Host is their target', async () => {
        const seen = info(await raw(p.access, req('GET', 'http://web.n1.warren/info', 'web.n1.warren')))
        assert.equal(seen.headers.host, 'web.n1.warren')
      })

      it('a *.localhost name that is not <service>.<node>.localhost gets 400 ERR_BAD_NAME', async () => {
        const r = await raw(p.access, req('GET', '/', `a.b.c.localhost:${port}`))
        assert.equal(r.status, 400)
        assert.equal(
          r.body.toString(),
          '400 Bad Request\n\nERR_BAD_NAME: "a.b.c.localhost" is not a subdomain gateway name: use <service>.<node>.localhost\n\n' +
            'What to do: Write <service>.<node>.localhost, where node is an alias from peers or the base36 node id (k51qzi5uqu5…).\n',
        )
      })
    })

    describe('the subdomain gateway', () => {
      it('carries a 4 MiB download and a 3 MiB upload intact with curl (alias and base36 id)', async () => {
        const n = 4 * 1024 * 1024
        for (const node of ['n1', p.hostBase36]) {
          const file = join(dir, `${node}.bin`)
          const down = await curl([
            '-o',
            file,
            '-w',
            '%{http_code}',
            `http://web.${node}.localhost:${port}/bytes?n=${n}`,
          ])
          assert.equal(down.code, 0, down.stderr)
          assert.equal(down.stdout, '200')
          assert.equal(sha256(await readFile(file)), sha256(patternBytes(0, n)))
        }
        const body = patternBytes(0, 3 * 1024 * 1024)
        const up = await curl(
          [
            '--data-binary',
            '@-',
            '-H',
            'content-type: application/octet-stream',
            `http://web.n1.localhost:${port}/hash`,
          ],
          { input: body },
        )
        assert.equal(up.code, 0, up.stderr)
        assert.deepEqual(JSON.parse(up.stdout), { bytes: body.length, sha256: sha256(body) })
      })

      it('the download bytes are exact (SHA-256 over a raw socket)', async () => {
        const n = 2 * 1024 * 1024 + 17
        const r = await raw(p.access, req('GET', `/bytes?n=${n}`, `web.n1.localhost:${port}`))
        assert.equal(r.status, 200)
        assert.equal(sha256(r.body), sha256(patternBytes(0, n)))
      })

      it('sends the whole path to the service, with no prefix, Host <service>.<id>.warren', async () => {
        for (const host of [`web.n1.localhost:${port}`, 'web.n1.gw.example']) {
          const seen = info(await raw(p.access, req('GET', '/http/x/y?q=1', host)))
          assert.equal(seen.url, '/http/x/y?q=1')
          assert.equal(seen.headers.host, `web.${p.hostBase36}.warren`)
          assert.equal(seen.headers['x-forwarded-prefix'], undefined)
        }
        const pac = info(await raw(p.access, req('GET', '/proxy.pac', `web.n1.localhost:${port}`)))
        assert.equal(pac.url, '/proxy.pac', 'the service owns every path of its origin')
      })

      it('lets same-origin requests and links from other sites in; refuses other origins and cross-site subresources', async () => {
        const host = `web.n1.localhost:${port}`
        const own = `http://${host}`
        const same = info(
          await raw(
            p.access,
            req('POST', '/info', host, {
              Origin: own,
              'Sec-Fetch-Site': 'same-origin',
              'Sec-Fetch-Mode': 'cors',
              'Content-Length': '0',
            }),
          ),
        )
        assert.equal(same.method, 'POST')
        const link = info(
          await raw(
            p.access,
            req('GET', '/info', host, {
              'Sec-Fetch-Site': 'cross-site',
              'Sec-Fetch-Mode': 'navigate',
              'Sec-Fetch-Dest': 'document',
            }),
          ),
        )
        assert.equal(link.method, 'GET')
        const before = served
        const what = `a browser request to ${own} was`
        const cases: [string, Record<string, string>, string][] = [
          [
            'POST',
            {
              Origin: 'http://evil.example',
              'Sec-Fetch-Site': 'cross-site',
              'Sec-Fetch-Mode': 'navigate',
              'Content-Length': '0',
            },
            'the request comes from http://evil.example',
          ],
          [
            'POST',
            { Origin: `http://hweb.n1.localhost:${port}`, 'Content-Length': '0' },
            `the request comes from http://hweb.n1.localhost:${port}`,
          ],
          [
            'GET',
            { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' },
            'the request comes from another site (Sec-Fetch-Site: cross-site)',
          ],
          [
            'GET',
            { 'Sec-Fetch-Site': 'same-site', 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty' },
            'the request comes from another site (Sec-Fetch-Site: same-site)',
          ],
          ['GET', { Origin: 'null', 'Sec-Fetch-Mode': 'websocket' }, 'the request comes from null'],
        ]
        for (const [method, headers, why] of cases) {
          const r = await raw(p.access, req(method, '/info', host, headers))
          assert.equal(r.status, 403, JSON.stringify(headers))
          assert.equal(r.body.toString(), crossRefusal(what, why))
        }
        assert.equal(served, before, 'no refused request reached the service')
      })
    })

    describe('WebSockets on the subdomain gateway', () => {
      const open = (origin: string): Promise<{ status: number; first?: string; body?: string }> =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/live`, {
            headers: { Host: `web.n1.localhost:${port}` },
            origin,
          })
          ws.once('message', (d) => {
            resolve({ status: 101, first: d.toString() })
            ws.close()
          })
          ws.once('unexpected-response', (_req, res) => {
            let body = ''
            res.on('data', (c: Buffer) => (body += c.toString()))
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          })
          ws.once('error', reject)
        })

      it('a WebSocket from the service origin is carried; one from another origin gets 403', async () => {
        assert.deepEqual(await open(`http://web.n1.localhost:${port}`), { status: 101, first: 'welcome /live peer=-' })
        const evil = await open('http://evil.example')
        assert.equal(evil.status, 403)
        assert.equal(
          evil.body,
          crossRefusal(
            `a browser request to http://web.n1.localhost:${port} was`,
            'the request comes from http://evil.example',
          ),
        )
      })
    })

    describe('the path gateway with browsers', () => {
      const host = (): string => `127.0.0.1:${port}`

      it('refuses requests from other sites and origins with 403 before they reach the service', async () => {
        const before = served
        const what = 'a browser request to the path gateway was'
        const cases: [string, string, Record<string, string>, string][] = [
          [
            'POST',
            '/http/n1/web/info',
            { Origin: 'http://evil.example', 'Content-Length': '0' },
            'the request comes from http://evil.example',
          ],
          [
            'GET',
            '/http/n1/hweb/info',
            { Origin: `http://web.n1.localhost:${port}`, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'cors' },
            `the request comes from http://web.n1.localhost:${port}`,
          ],
          [
            'GET',
            '/http/n1/web/info',
            { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' },
            'the request comes from another site (Sec-Fetch-Site: cross-site)',
          ],
          [
            'POST',
            '/p2p/n1/x/web/http/info',
            {
              'Sec-Fetch-Site': 'same-site',
              'Sec-Fetch-Mode': 'navigate',
              'Sec-Fetch-Dest': 'document',
              'Content-Length': '0',
            },
            'the request comes from another site (Sec-Fetch-Site: same-site)',
          ],
          // refused before the name is resolved: an unknown alias gives the origin error, not ERR_UNKNOWN_PEER
          [
            'GET',
            '/http/nobody/web/info',
            { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'script' },
            'the request comes from another site (Sec-Fetch-Site: cross-site)',
          ],
        ]
        for (const [method, target, headers, why] of cases) {
          const r = await raw(p.access, req(method, target, host(), headers))
          assert.equal(r.status, 403, `${method} ${target}`)
          assert.equal(r.body.toString(), crossRefusal(what, why))
          assert.equal(r.headers['access-control-allow-origin'], undefined, 'no CORS headers')
        }
        assert.equal(served, before, 'no refused request reached a service')
      })

      it('redirects top-level navigations to the service origin (302 for GET, 307 for a same-origin POST)', async () => {
        const nav = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' }
        const cases: [string, string, Record<string, string>, number, string][] = [
          [
            'GET',
            '/http/n1/web/a/../info?x=1',
            { ...nav, 'Sec-Fetch-Site': 'cross-site' },
            302,
            `http://web.n1.localhost:${port}/info?x=1`,
          ],
          [
            'GET',
            '/p2p/n1/x/hweb/http/',
            { ...nav, 'Sec-Fetch-Site': 'none' },
            302,
            `http://hweb.n1.localhost:${port}/`,
          ],
          [
            'GET',
            `/http/${p.host.peerId.toString()}/web/x`,
            { ...nav, 'Sec-Fetch-Site': 'none' },
            302,
            `http://web.${p.hostBase36}.localhost:${port}/x`,
          ],
          [
            'POST',
            '/http/n1/web/form',
            { ...nav, 'Sec-Fetch-Site': 'same-origin', Origin: `http://${host()}`, 'Content-Length': '0' },
            307,
            `http://web.n1.localhost:${port}/form`,
          ],
        ]
        for (const [method, target, headers, status, location] of cases) {
          const r = await raw(p.access, req(method, target, host(), headers))
          assert.equal(r.status, status, target)
          assert.equal(r.headers.location, location)
          assert.equal(r.body.length, 0)
        }
        const lan = await raw(
          p.access,
          req('GET', '/http/n1/web/', 'gw.example:8080', { ...nav, 'Sec-Fetch-Site': 'none' }),
        )
        assert.equal(lan.headers.location, 'http://web.n1.gw.example:8080/', 'a proxy.hosts name keeps its domain')
      })

      it('passes same-origin browser requests, and clients without Sec-Fetch-* or Origin, as before', async () => {
        const same = info(
          await raw(
            p.access,
            req('GET', '/http/n1/web/info', host(), { 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'cors' }),
          ),
        )
        assert.equal(same.headers['x-forwarded-prefix'], '/http/n1/web')
        const r = await curl(['-i', '-X', 'POST', '--data-binary', 'x', `http://${p.access}/http/n1/web/info`])
        assert.equal(r.code, 0, r.stderr)
        const c = parseCurlResponse(r.stdout)
        assert.equal(c.status, 200)
        assert.equal(JSON.parse(c.body).method, 'POST')
      })
    })

    describe('a node named by ticket (no dialing for web pages)', () => {
      it('a browser request naming a ticket with unknown addresses is refused and nothing is dialed', async () => {
        const browserish: Record<string, string>[] = [
          { 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' },
          { 'Sec-Fetch-Site': 'none', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' },
          { Origin: `http://127.0.0.1:${port}` },
        ]
        for (const headers of browserish) {
          const r = await raw(p.access, req('GET', `/http/${ticket}/web/x`, `127.0.0.1:${port}`, headers))
          assert.equal(r.status, 403, JSON.stringify(headers))
          assert.equal(r.headers['x-warren-error'], 'ERR_UNKNOWN_ADDRESSES')
          assert.equal(
            r.body.toString().split('\n')[2],
            `ERR_UNKNOWN_ADDRESSES: "${ticket.slice(0, 37)}…" names addresses of node ${stranger} that this node does not know, and new addresses are not allowed here`,
          )
        }
        const img = await raw(
          p.access,
          req('GET', `/http/${ticket}/web/x`, `127.0.0.1:${port}`, {
            'Sec-Fetch-Site': 'cross-site',
            'Sec-Fetch-Mode': 'no-cors',
            'Sec-Fetch-Dest': 'image',
          }),
        )
        assert.equal(img.status, 403, 'a cross-site <img src> is refused by the origin rule, before the ticket is read')
        assert.equal(baitConnections, 0, 'no connection to the ticket address')
      })

      it('the same URL from curl dials the ticket (so the listener does count), after which browsers may use it', async () => {
        const r = await raw(p.access, req('GET', `/http/${ticket}/web/x`, `127.0.0.1:${port}`))
        assert.equal(r.status, 502)
        assert.equal(r.headers['x-warren-error'], 'ERR_DIAL_FAILED')
        assert.ok(baitConnections > 0, 'the non-browser request dialed the ticket address')
        const nav = await raw(
          p.access,
          req('GET', `/http/${ticket}/web/x`, `127.0.0.1:${port}`, {
            'Sec-Fetch-Site': 'none',
            'Sec-Fetch-Mode': 'navigate',
            'Sec-Fetch-Dest': 'document',
          }),
        )
        assert.equal(nav.status, 302, 'addresses now known: the navigation is redirected to the base36 origin')
        assert.match(nav.headers.location!, new RegExp(`^http://web\\.k51qzi5uqu5[a-z0-9]+\\.localhost:${port}/x$`))
      })
    })

    describe('dot segments', () => {
      it('are resolved before the service, and never climb out of the service (path and subdomain forms)', async () => {
        const cases: [string, string, string][] = [
          ['/http/n1/web/a/b/../c/./info', `127.0.0.1:${port}`, '/a/c/info'],
          ['/http/n1/web/../../hweb/info', `127.0.0.1:${port}`, '/hweb/info'],
          ['/http/n1/web/%2e%2e/%2E%2e/n1/hweb/x?p=/../y', `127.0.0.1:${port}`, '/n1/hweb/x?p=/../y'],
          ['/p2p/n1/x/web/http/.%2e/.%2E/info/.', `127.0.0.1:${port}`, '/info/'],
          ['/a/%2e%2e/../b/%2e/info', `web.n1.localhost:${port}`, '/b/info'],
        ]
        for (const [target, host, want] of cases) {
          const seen = info(await raw(p.access, req('GET', target, host)))
          assert.equal(seen.url, want, target)
          assert.equal(seen.headers.host, `web.${p.hostBase36}.warren`, `${target} stayed on service web`)
        }
      })
    })
  }),
)

describe('proxy.hosts in config.json', () => {
  it('takes lowercase host names with an optional port and names a bad one', () => {
    assert.deepEqual(validateConfig({ proxy: { hosts: ['warren.home.arpa', 'gw.lan:8080'] } }).proxy?.hosts, [
      'warren.home.arpa',
      'gw.lan:8080',
    ])
    for (const bad of ['Bad Host', 'x.example:99999', 'http://x.example', '-x.example']) {
      assert.throws(
        () => validateConfig({ proxy: { hosts: [bad] } }),
        (err: WarrenError) =>
          err.code === 'ERR_CONFIG_INVALID' &&
          err.message ===
            `config is invalid:\n  proxy.hosts[0]: ${JSON.stringify(bad)} is not a host name: use lowercase DNS labels separated by dots, optionally with :port (warren.home.arpa:4780)`,
      )
    }
  })
})
