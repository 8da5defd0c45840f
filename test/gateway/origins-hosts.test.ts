/**
 * The access port as a web server only under its own names: Host checks on the gateway and the PAC file (DNS
 * rebinding: 421), the names it does answer to (addresses, localhost, proxy.hosts, pinned ports), and proxy.hosts
 * in config.json. Real nodes, the real access port, raw sockets (so every header is exactly what the test wrote).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { validateConfig } from '../../src/config/load.ts'
import type { WarrenError } from '../../src/errors.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'
import { hostRefusal, info, raw, req } from './origins-kit.ts'

forEachEngine((engine, label) =>
  describe(`gateway origins ${label}`, () => {
    let p: Pair
    let port: number
    /** Requests that reached the web app (every service of the pair but raw/down targets it). */
    let served = 0

    before(async () => {
      p = await startPair({
        gatewayFastPath: FAST_PATH[engine],
        client: { proxy: { hosts: ['gw.example', 'pinned.example:1'] } },
      })
      port = Number(p.access.slice(p.access.lastIndexOf(':') + 1))
      p.web.server.on('request', () => served++)
    })

    after(() => p?.stop())

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
