/** Warren hostnames and service addresses: shapes, errors, the fixed address format, collisions. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { isWarrenHost, parseServiceHost, parseWarrenHost } from '../../src/access/names.ts'
import { AddressTable, normalizeIPv6 } from '../../src/access/service-addresses.ts'
import { validateConfig } from '../../src/config/load.ts'
import { WarrenError } from '../../src/errors.ts'

const ID = '12D3KooWLThsyTVpCC3CYxT47CHgK9cYMBc2MwevddvraV3MoQSU'

function throwsCode(fn: () => unknown, code: string, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WarrenError)
    assert.equal(err.code, code)
    assert.equal(err.message, message)
    assert.ok((err.hint ?? '').length > 10)
    return true
  })
}

describe('names', () => {
  it('parses service and node names, case-insensitively, with a trailing dot', () => {
    assert.deepEqual(parseWarrenHost('web.laptop.warren'), { kind: 'service', service: 'web', node: 'laptop' })
    assert.deepEqual(parseWarrenHost('WEB.Laptop.Warren.'), { kind: 'service', service: 'web', node: 'laptop' })
    assert.deepEqual(parseWarrenHost('laptop.warren'), { kind: 'node', node: 'laptop' })
    assert.deepEqual(parseServiceHost('db.k51qzi5uqu5abc.internal', 'internal'), {
      service: 'db',
      node: 'k51qzi5uqu5abc',
    })
    assert.equal(isWarrenHost('a.b.warren'), true)
    assert.equal(isWarrenHost('warren.example.com'), false)
    assert.equal(isWarrenHost('notwarren'), false)
  })

  it('refuses names outside the TLD and malformed names with what to write', () => {
    throwsCode(
      () => parseWarrenHost('example.com'),
      'ERR_NOT_WARREN_NAME',
      '"example.com" is not a .warren name: Warren only reaches <service>.<node>.warren, it is not an open proxy',
    )
    throwsCode(
      () => parseWarrenHost('web.laptop.warren', 'lan'),
      'ERR_NOT_WARREN_NAME',
      '"web.laptop.warren" is not a .lan name: Warren only reaches <service>.<node>.lan, it is not an open proxy',
    )
    throwsCode(
      () => parseWarrenHost('warren'),
      'ERR_BAD_NAME',
      '"warren" names no node: use <service>.<node>.warren or <node>.warren',
    )
    throwsCode(
      () => parseWarrenHost('a.b.c.warren'),
      'ERR_BAD_NAME',
      '"a.b.c.warren" has 3 labels before .warren; use <service>.<node>.warren or <node>.warren',
    )
    throwsCode(
      () => parseWarrenHost('we_b.laptop.warren'),
      'ERR_BAD_NAME',
      '"we_b.laptop.warren" has the label "we_b", which is not a valid service or node name',
    )
    throwsCode(() => parseServiceHost('laptop.warren'), 'ERR_BAD_NAME', '"laptop.warren" names a node but no service')
  })
})

describe('service addresses', () => {
  const id = peerIdFromString(ID)

  it('follow the fixed v1 format (known answers)', () => {
    const t = new AddressTable()
    assert.deepEqual(t.addressesOf(id, 'web'), {
      ipv4: '100.125.108.83',
      ipv6: 'fd77:6172:7265:6e00:598c:a22c:5c12:cec4',
    })
    assert.deepEqual(t.addressesOf(id), { ipv4: '100.84.183.185', ipv6: 'fd77:6172:7265:6e00:1335:fc89:9b1:3aa4' })
  })

  it('map back to their owner, in any IPv6 spelling', () => {
    const t = new AddressTable()
    const a = t.addressesOf(id, 'db')
    assert.deepEqual(t.lookup(a.ipv4), { node: ID, service: 'db' })
    assert.deepEqual(t.lookup(a.ipv6.toUpperCase()), { node: ID, service: 'db' })
    assert.equal(normalizeIPv6('fd77:6172:7265:6e00:0:0:0:1'), 'fd77:6172:7265:6e00::1')
    assert.equal(t.lookup('100.64.0.1'), undefined)
    assert.equal(t.lookup('::1'), undefined)
  })

  it('detect IPv4 collisions among 5000 names and resolve them deterministically', () => {
    const claim = () => {
      const t = new AddressTable()
      const out = Array.from({ length: 5000 }, (_, i) => t.addressesOf(id, `svc-${i}`))
      return { t, out }
    }
    const a = claim()
    const b = claim()
    assert.equal(a.t.collisions, 3, 'this id has 3 IPv4 collisions among svc-0..svc-4999')
    assert.equal(new Set(a.out.map((x) => x.ipv4)).size, 5000, 'every name has its own IPv4 address')
    assert.equal(new Set(a.out.map((x) => x.ipv6)).size, 5000)
    assert.deepEqual(a.out, b.out, 'the same order gives the same table')
    for (const [i, x] of a.out.entries()) assert.deepEqual(a.t.lookup(x.ipv4), { node: ID, service: `svc-${i}` })
    for (const x of a.out) {
      const [first, second] = x.ipv4.split('.').map(Number)
      assert.ok(first === 100 && second! >= 64 && second! <= 127, `${x.ipv4} is in 100.64.0.0/10`)
      assert.ok(x.ipv6.startsWith('fd77:6172:7265:6e00:'), x.ipv6)
    }
  })
})

describe('config: the access port', () => {
  it('a non-loopback listen address needs proxy.auth', () => {
    assert.throws(
      () => validateConfig({ proxy: { listen: '0.0.0.0:4780' } }),
      (err: WarrenError) =>
        err.code === 'ERR_CONFIG_INVALID' &&
        err.message.includes(
          'proxy.auth: is required because listen "0.0.0.0:4780" is not a loopback address (add "auth": { "username": "…", "password": "…" })',
        ),
    )
    const ok = validateConfig({ proxy: { listen: '0.0.0.0:4780', auth: { username: 'a', password: 'b' } } })
    assert.equal(ok.proxy?.auth?.username, 'a')
  })

  it('a listen address that is not host:port is refused', () => {
    assert.throws(
      () => validateConfig({ proxy: { listen: 'localhost' } }),
      (err: WarrenError) =>
        err.message.includes(
          'proxy.listen: "localhost" is not a listen address: it has no port (write host:port, or a bare port for 127.0.0.1)',
        ),
    )
  })

  it('service type is tcp or http', () => {
    assert.equal(validateConfig({ services: { w: { target: '/tcp/1', type: 'http' } } }).services.w?.type, 'http')
    assert.throws(
      () => validateConfig({ services: { w: { target: '/tcp/1', type: 'udp' } } }),
      (err: WarrenError) => err.message.includes('services.w.type'),
    )
  })
})
