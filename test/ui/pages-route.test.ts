/**
 * The access port's router with the node's own pages (src/access/local-pages.ts): `warren.localhost:<port>` routes
 * to them only on the access port's own port, only from their own origin, and after credentials; `/metrics` on the
 * plain addresses only for clients that are not browsers; without a page handler nothing changes. No sockets.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type AccessRequest, AccessRouter, type RouterOptions } from '../../src/access/routes.ts'
import { AddressTable } from '../../src/access/service-addresses.ts'
import { HostPolicy } from '../../src/gateway/origins.ts'

const PORT = 4780
const HOST = `warren.localhost:${PORT}`

function router(opts: Partial<RouterOptions> = {}, ready = true): AccessRouter {
  return new AccessRouter({
    tld: 'warren',
    gatewayEnabled: true,
    policy: new HostPolicy(() => PORT, []),
    addresses: new AddressTable(),
    backend: { resolveNode: () => ({ id: 'x', base36: 'x' }) },
    pages: { ready: () => ready, port: () => PORT },
    ...opts,
  })
}

const req = (target: string, host: string, raw: string[] = [], headers: AccessRequest['headers'] = {}) => ({
  method: 'GET',
  target,
  host,
  raw,
  headers,
})

/** The error code of a refusal, or the route's kind. */
function code(r: ReturnType<AccessRouter['request']>): string {
  return r.kind === 'refuse' ? r.error.code : r.kind
}

/** The code and message of a refusal, or the route. */
function outcome(r: ReturnType<AccessRouter['request']>): unknown {
  return r.kind === 'refuse' ? { code: r.error.code, message: r.error.message, status: r.status } : r
}

describe('the node pages on the access port', () => {
  it('routes warren.localhost:<port> to the pages, any path, from the browser itself or a script', () => {
    const r = router()
    assert.deepEqual(r.request(req('/', HOST)), { kind: 'page', scope: 'all' })
    assert.deepEqual(r.request(req('/status.json?x=1', HOST)), { kind: 'page', scope: 'all' })
    assert.deepEqual(r.request(req('/', `WARREN.localhost.:${PORT}`)), { kind: 'page', scope: 'all' })
    // a name that only starts like it is someone else's
    assert.equal(code(r.request(req('/', `warren.localhost.evil.example:${PORT}`))), 'ERR_HOST_NOT_SERVED')
    const own = ['Origin', `http://${HOST}`, 'Sec-Fetch-Site', 'same-origin']
    assert.deepEqual(r.request(req('/status.json', HOST, own)), { kind: 'page', scope: 'all' })
    assert.deepEqual(r.request(req('/', HOST, ['Sec-Fetch-Site', 'none', 'Sec-Fetch-Mode', 'navigate'])), {
      kind: 'page',
      scope: 'all',
    })
  })

  it('refuses another port, another origin and other sites with the exact error', () => {
    const r = router()
    assert.deepEqual(outcome(r.request(req('/', 'warren.localhost:9'))), {
      code: 'ERR_HOST_NOT_SERVED',
      message: `the access port does not serve the host name "warren.localhost:9": the access port is ${PORT}`,
      status: undefined,
    })
    assert.deepEqual(outcome(r.request(req('/status.json', HOST, ['Origin', 'http://evil.example']))), {
      code: 'ERR_CROSS_ORIGIN',
      message: `a browser request to http://${HOST} was refused: the request comes from http://evil.example`,
      status: undefined,
    })
    assert.deepEqual(outcome(r.request(req('/status.json', HOST, ['Sec-Fetch-Site', 'cross-site']))), {
      code: 'ERR_CROSS_ORIGIN',
      message: `a browser request to http://${HOST} was refused: the request comes from another site (Sec-Fetch-Site: cross-site)`,
      status: undefined,
    })
    // a service's page on the subdomain gateway is same-site: refused too
    const fromService = ['Origin', `http://web.laptop.localhost:${PORT}`, 'Sec-Fetch-Site', 'same-site']
    assert.equal(code(r.request(req('/status.json', HOST, fromService))), 'ERR_CROSS_ORIGIN')
  })

  it('asks for credentials with proxy.auth, after the Host and origin checks', () => {
    const r = router({ auth: { username: 'u', password: 'p' } })
    const ask = r.request(req('/', HOST))
    assert.equal(ask.kind === 'refuse' ? ask.status : undefined, 401)
    assert.equal(code(r.request(req('/', HOST, ['Origin', 'http://evil.example']))), 'ERR_CROSS_ORIGIN')
    const basic = `Basic ${Buffer.from('u:p').toString('base64')}`
    assert.deepEqual(r.request(req('/', HOST, [], { authorization: basic })), { kind: 'page', scope: 'all' })
  })

  it('serves /metrics on the plain addresses to scripts only, and nothing else of the pages there', () => {
    const r = router()
    assert.deepEqual(r.request(req('/metrics', `127.0.0.1:${PORT}`)), { kind: 'page', scope: 'metrics' })
    assert.deepEqual(r.request(req('/metrics', `localhost:${PORT}`)), { kind: 'page', scope: 'metrics' })
    const browser = ['Sec-Fetch-Site', 'cross-site']
    assert.equal(code(r.request(req('/metrics', `127.0.0.1:${PORT}`, browser))), 'ERR_NO_SUCH_PAGE')
    assert.equal(code(r.request(req('/status.json', `127.0.0.1:${PORT}`))), 'ERR_NO_SUCH_PAGE')
  })

  it('leaves warren.localhost and /metrics as they were while no page handler is set', () => {
    const r = router({}, false)
    assert.equal(code(r.request(req('/', HOST))), 'ERR_BAD_NAME')
    assert.equal(code(r.request(req('/metrics', `127.0.0.1:${PORT}`))), 'ERR_NO_SUCH_PAGE')
  })
})
