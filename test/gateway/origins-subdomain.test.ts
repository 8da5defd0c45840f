/**
 * One origin per service: the subdomain gateway (`http://<service>.<node>.localhost:<port>/`) carries downloads,
 * uploads and WebSockets, sends the whole path with no prefix, and applies the origin rules (links from other
 * sites pass, other origins and cross-site subresources get 403); dot segments are resolved before the service on
 * both gateway forms. Real nodes, the real access port, raw sockets and curl; transfers checked by SHA-256.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { WebSocket } from 'ws'
import { curl } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { patternBytes, sha256 } from '../support/web-app.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'
import { crossRefusal, info, raw, req } from './origins-kit.ts'

forEachEngine((engine, label) =>
  describe(`gateway origins ${label}`, () => {
    let p: Pair
    let port: number
    /** Requests that reached the web app (every service of the pair but raw/down targets it). */
    let served = 0
    let dir: string

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'warren-origins-'))
      p = await startPair({
        gatewayFastPath: FAST_PATH[engine],
        client: { proxy: { hosts: ['gw.example', 'pinned.example:1'] } },
      })
      port = Number(p.access.slice(p.access.lastIndexOf(':') + 1))
      p.web.server.on('request', () => served++)
    })

    after(async () => {
      await p?.stop()
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
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
