/**
 * Browsers on the path gateway (`/http/…`, `/p2p/…`), where every service shares one origin: Fetch Metadata and
 * Origin rules refuse requests from other sites and origins (403) before they reach a service, top-level
 * navigations are redirected to the service's own origin, and a browser request naming a node by a ticket with
 * addresses this node does not know is refused without dialing. Real nodes, the real access port, raw sockets
 * (so every header is exactly what the test wrote) and curl.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import { curl, parseCurlResponse } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'
import { crossRefusal, info, raw, req } from './origins-kit.ts'

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

    before(async () => {
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
      await new Promise<void>((r) => (bait === undefined ? r() : bait.close(() => r())))
    })

    it('the first request for alias n1 (a ticket in peers) may come from a browser: carried, nothing refused', async () => {
      const headers = { 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty' }
      const seen = info(await raw(p.access, req('GET', '/http/n1/web/info', `127.0.0.1:${port}`, headers)))
      assert.equal(seen.headers['sec-fetch-site'], 'same-origin')
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
  }),
)
