/**
 * The access port's router (src/access/routes.ts) on its own: every request form gets its route or its exact
 * refusal, the same decision for the full path and the fast path. Names resolve through a real address book
 * (aliases from `peers`); nothing here opens a socket.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { type AccessRequest, AccessRouter, type RouterOptions } from '../../src/access/routes.ts'
import { AddressTable } from '../../src/access/service-addresses.ts'
import type { WarrenError } from '../../src/errors.ts'
import { HostPolicy } from '../../src/gateway/origins.ts'
import type { RequestHead } from '../../src/http/http1.ts'
import { AddressBook } from '../../src/identity/address-book.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'

const PORT = 4780
const laptop = peerIdFromPrivateKey(await generateNodeKey())
const book = new AddressBook({ laptop: laptop.toString() })

function router(opts: Partial<RouterOptions> = {}): AccessRouter {
  return new AccessRouter({
    tld: 'warren',
    gatewayEnabled: true,
    policy: new HostPolicy(() => PORT, []),
    addresses: new AddressTable(),
    backend: {
      resolveNode: (name) => {
        const { id } = book.resolve(name)
        return { id: id.toString(), base36: formatNodeIdBase36(id) }
      },
    },
    ...opts,
  })
}

const request = (target: string, extra: Partial<AccessRequest> = {}): AccessRequest => ({
  method: 'GET',
  target,
  host: `127.0.0.1:${PORT}`,
  raw: [],
  headers: {},
  ...extra,
})

describe('access port router', () => {
  it('routes the path gateway, the subdomain gateway and absolute-form proxy requests to a service', () => {
    const r = router()
    assert.deepEqual(r.request(request('/http/laptop/web/a?b=1')), {
      kind: 'forward',
      spec: { node: 'laptop', service: 'web', path: '/a?b=1', prefix: '/http/laptop/web' },
      ownCredentials: false,
    })
    assert.deepEqual(r.request(request('/x/../y', { host: `web.laptop.localhost:${PORT}` })), {
      kind: 'forward',
      spec: { node: 'laptop', service: 'web', path: '/y', browser: false },
      ownCredentials: false,
    })
    assert.deepEqual(r.request(request('http://web.laptop.warren:8080/z', { host: 'web.laptop.warren:8080' })), {
      kind: 'forward',
      spec: { node: 'laptop', service: 'web', path: '/z', host: 'web.laptop.warren:8080' },
      ownCredentials: false,
    })
  })

  it('CONNECT host:port is a tunnel; anything else is 400 ERR_BAD_REQUEST', () => {
    const r = router()
    assert.deepEqual(r.connect(request('web.laptop.warren:443')), { kind: 'tunnel', host: 'web.laptop.warren' })
    const bad = r.connect(request('web.laptop.warren'))
    assert.equal(bad.kind, 'refuse')
    assert.equal(bad.kind === 'refuse' && bad.error.code, 'ERR_BAD_REQUEST')
  })

  it('answers the PAC file to plain requests only, and ERR_NO_SUCH_PAGE for other paths and for an Upgrade', () => {
    const r = router()
    assert.deepEqual(r.request(request('/proxy.pac?x')), { kind: 'pac' })
    for (const route of [r.request(request('/nothing')), r.upgrade(request('/proxy.pac'))]) {
      assert.equal(route.kind, 'refuse')
      assert.equal(route.kind === 'refuse' && route.error.code, 'ERR_NO_SUCH_PAGE')
    }
  })

  it('refuses with the specific code: bad gateway path, gateway disabled, bad proxy URL, bad .warren name', () => {
    const cases: [AccessRouter, string, string][] = [
      [router(), '/http/laptop', 'ERR_BAD_GATEWAY_PATH'],
      [router({ gatewayEnabled: false }), '/http/laptop/web/', 'ERR_GATEWAY_DISABLED'],
      [router(), 'https://web.laptop.warren/', 'ERR_BAD_REQUEST'],
      [router(), 'http://[bad/', 'ERR_BAD_REQUEST'],
      [router(), 'http://laptop.warren/', 'ERR_BAD_NAME'],
      [router(), 'http://example.com/', 'ERR_NOT_WARREN_NAME'],
    ]
    for (const [r, target, code] of cases) {
      const route = r.request(request(target))
      assert.equal(route.kind === 'refuse' && route.error.code, code, target)
    }
  })

  it('asks for credentials with 407 on proxy requests and 401 on origin-form ones, and drops its own', () => {
    const auth = { username: 'u', password: 'p' }
    const r = router({ auth })
    const proxy = r.request(request('http://web.laptop.warren/'))
    assert.equal(proxy.kind === 'refuse' && proxy.error.code, 'ERR_PROXY_AUTH')
    assert.equal(proxy.kind === 'refuse' && proxy.status, undefined)
    const origin = r.request(request('/http/laptop/web/'))
    assert.equal(origin.kind === 'refuse' && origin.status, 401)
    const basic = `Basic ${Buffer.from('u:p').toString('base64')}`
    const own = r.request(request('/http/laptop/web/', { headers: { authorization: basic } }))
    assert.equal(own.kind === 'forward' && own.ownCredentials, true)
  })

  it('redirects a browser navigation on the path gateway to the service origin', () => {
    const raw = ['Sec-Fetch-Mode', 'navigate', 'Sec-Fetch-Dest', 'document', 'Sec-Fetch-Site', 'none']
    assert.deepEqual(router().request(request('/http/laptop/web/x', { raw })), {
      kind: 'redirect',
      status: 302,
      location: `http://web.laptop.localhost:${PORT}/x`,
    })
  })

  it('gives the fast path the same forward spec, and nothing where the full path must answer', () => {
    const r = router()
    const head = (target: string, host = `127.0.0.1:${PORT}`): RequestHead => ({
      method: 'GET',
      target,
      host,
      raw: [],
      framing: { kind: 'none' },
      close: false,
      size: 0,
      bytes: Buffer.alloc(0),
    })
    const full = r.request(request('/http/laptop/web/a'))
    assert.deepEqual(r.fastRoute(head('/http/laptop/web/a')), full.kind === 'forward' ? full.spec : 'no route')
    assert.equal(r.fastRoute(head('/proxy.pac')), undefined)
    assert.equal(r.fastRoute(head('/http/laptop/web/a', 'rebind.example')), undefined)
  })
})

describe('host policy', () => {
  it('gives the same Host the same frozen class, again when the access port moved, and refuses every time', () => {
    let port = PORT
    const policy = new HostPolicy(() => port, [])
    const a = policy.classify(`web.laptop.localhost:${PORT}`)
    assert.deepEqual(a, { kind: 'service', service: 'web', node: 'laptop', domain: 'localhost', port: PORT })
    assert.equal(policy.classify(`web.laptop.localhost:${PORT}`), a)
    assert.ok(Object.isFrozen(a))
    port = PORT + 1
    assert.throws(
      () => policy.classify(`web.laptop.localhost:${PORT}`),
      (e: WarrenError) => e.code === 'ERR_HOST_NOT_SERVED' && e.message.endsWith(`the access port is ${PORT + 1}`),
    )
    assert.deepEqual(policy.classify(`127.0.0.1:${PORT + 1}`), { kind: 'local', name: '127.0.0.1', port: PORT + 1 })
    for (let i = 0; i < 2; i++) {
      assert.throws(
        () => policy.classify('evil.example'),
        (e: WarrenError) =>
          e.code === 'ERR_HOST_NOT_SERVED' &&
          e.message ===
            'the access port does not serve the host name "evil.example": it is not an address, localhost, *.localhost or a name in proxy.hosts',
      )
    }
  })
})
