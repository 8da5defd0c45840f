import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatTarget, parseTarget, targetProblem } from '../../src/config/target.ts'

const HINT =
  'Write a target as /tcp/<port> (this machine) or /ip4/<addr>/tcp/<port>, /ip6/…, /dns4|dns6|dns/<name>/tcp/<port>.'

function bad(text: string, why: string): void {
  assert.throws(() => parseTarget(text), {
    code: 'ERR_BAD_TARGET',
    message: `"${text}" ${why}`,
    hint: HINT,
    details: { target: text },
  })
  assert.equal(targetProblem(text), `"${text}" ${why}`)
}

describe('service targets', () => {
  it('/tcp/<port> means 127.0.0.1', () => {
    assert.deepEqual(parseTarget('/tcp/8080'), { host: '127.0.0.1', port: 8080 })
    assert.deepEqual(parseTarget('/tcp/1'), { host: '127.0.0.1', port: 1 })
    assert.deepEqual(parseTarget('/tcp/65535'), { host: '127.0.0.1', port: 65535 })
  })

  it('ip4 and ip6 hosts keep their family', () => {
    assert.deepEqual(parseTarget('/ip4/10.0.0.4/tcp/5432'), { host: '10.0.0.4', port: 5432, family: 4 })
    assert.deepEqual(parseTarget('/ip6/::1/tcp/22'), { host: '::1', port: 22, family: 6 })
    assert.deepEqual(parseTarget('/ip6/2001:db8::7/tcp/443'), { host: '2001:db8::7', port: 443, family: 6 })
  })

  it('dns4, dns6 and dns names', () => {
    assert.deepEqual(parseTarget('/dns4/db.lan/tcp/5432'), { host: 'db.lan', port: 5432, family: 4 })
    assert.deepEqual(parseTarget('/dns6/db.lan/tcp/5432'), { host: 'db.lan', port: 5432, family: 6 })
    assert.deepEqual(parseTarget('/dns/localhost/tcp/80'), { host: 'localhost', port: 80 })
    assert.equal(targetProblem('/dns/localhost/tcp/80'), undefined)
  })

  it('formats host:port, bracketing IPv6', () => {
    assert.equal(formatTarget(parseTarget('/tcp/8080')), '127.0.0.1:8080')
    assert.equal(formatTarget(parseTarget('/ip6/::1/tcp/22')), '[::1]:22')
    assert.equal(formatTarget(parseTarget('/dns4/db.lan/tcp/5432')), 'db.lan:5432')
  })

  it('rejects ports out of range or not numbers', () => {
    bad('/tcp/99999', 'is not a valid port (1-65535)')
    bad('/tcp/0', 'is not a valid port (1-65535)')
    bad('/tcp/65536', 'is not a valid port (1-65535)')
    bad('/tcp/-1', 'is not a valid port (1-65535)')
    bad('/tcp/http', 'is not a valid port (1-65535)')
    bad('/tcp/', 'is not a valid port (1-65535)')
    bad('/ip4/10.0.0.4/tcp/99999', 'is not a valid port (1-65535)')
  })

  it('rejects text that is not a multiaddr', () => {
    bad('8080', 'is not a multiaddr (it must start with "/")')
    bad('localhost:8080', 'is not a multiaddr (it must start with "/")')
    bad('', 'is not a multiaddr (it must start with "/")')
  })

  it('rejects multiaddrs that are not TCP targets', () => {
    bad('/udp/53', 'does not end in /tcp/<port>')
    bad('/ip4/10.0.0.4', 'does not end in /tcp/<port>')
    bad('/ip4/10.0.0.4/tcp/80/ws', 'does not end in /tcp/<port>')
    bad('/ip4/10.0.0.4/udp/1/tcp/80', 'has more parts than <host>/tcp/<port>')
    bad('/unix/tmp%2Fsock/tcp/80', 'uses /unix; use /ip4, /ip6, /dns4, /dns6 or /dns')
  })

  it('rejects a malformed address, passing on the parser’s reason', () => {
    for (const text of ['/ip4/300.1.1.1/tcp/80', '/bogus/1/tcp/80']) {
      assert.throws(
        () => parseTarget(text),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ERR_BAD_TARGET')
          assert.ok(err.message.startsWith(`"${text}" is not a valid multiaddr (`), err.message)
          return true
        },
      )
    }
  })
})
