/**
 * Listen addresses (`--listen`, forwards in state.json, `proxy.listen`, `dns.listen`): what each form means, the
 * exact error for each malformed one, and the rule that a non-loopback address must be asked for (`--public`,
 * `"public": true`). Also: log lines escape what peers chose, so one call is one line.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkPublicListen, dnsSettings } from '../../src/access/settings.ts'
import { printError } from '../../src/cli/common.ts'
import {
  formatListenAddress,
  isPublicListen,
  LISTEN_ADDRESS_HINT,
  parseListenAddress,
} from '../../src/config/listen-address.ts'
import { validateConfig } from '../../src/config/load.ts'
import { isWarrenError, WarrenError } from '../../src/errors.ts'
import { createLogger, escapeControl, formatLogLine } from '../../src/log.ts'

function badAddress(text: string, problem: string): void {
  assert.throws(
    () => parseListenAddress(text),
    (err: unknown) => {
      assert.ok(isWarrenError(err, 'ERR_BAD_ADDRESS'), `not ERR_BAD_ADDRESS: ${err}`)
      assert.equal(err.message, `${JSON.stringify(text)} is not a listen address: ${problem}`)
      assert.equal(err.hint, LISTEN_ADDRESS_HINT)
      return true
    },
  )
}

describe('listen addresses', () => {
  it('a bare port is 127.0.0.1:<port> (not host 543, port 2)', () => {
    assert.deepEqual(parseListenAddress('5432'), { host: '127.0.0.1', port: 5432 })
    assert.deepEqual(parseListenAddress('0'), { host: '127.0.0.1', port: 0 })
    assert.deepEqual(parseListenAddress('65535'), { host: '127.0.0.1', port: 65535 })
    assert.deepEqual(parseListenAddress('22', '::1'), { host: '::1', port: 22 })
  })

  it('reads host:port, [v6]:port and host names', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:5432'), { host: '127.0.0.1', port: 5432 })
    assert.deepEqual(parseListenAddress(' 0.0.0.0:80 '), { host: '0.0.0.0', port: 80 })
    assert.deepEqual(parseListenAddress('[::1]:22'), { host: '::1', port: 22 })
    assert.deepEqual(parseListenAddress('[::]:0'), { host: '::', port: 0 })
    assert.deepEqual(parseListenAddress('localhost:8080'), { host: 'localhost', port: 8080 })
    assert.deepEqual(parseListenAddress('my-box.lan:1'), { host: 'my-box.lan', port: 1 })
    assert.equal(formatListenAddress(parseListenAddress('[::1]:22')), '[::1]:22')
  })

  it('names what is wrong with each malformed form', () => {
    badAddress('', 'it is empty')
    badAddress('  ', 'it is empty')
    badAddress('65536', 'port "65536" is not a number from 0 to 65535')
    badAddress('123456', 'port "123456" is not a number from 0 to 65535')
    badAddress('127.0.0.1', 'it has no port (write host:port, or a bare port for 127.0.0.1)')
    badAddress('localhost', 'it has no port (write host:port, or a bare port for 127.0.0.1)')
    badAddress('127.0.0.1:', 'it has no port after the colon')
    badAddress('127.0.0.1:99999', 'port "99999" is not a number from 0 to 65535')
    badAddress('127.0.0.1:-1', 'port "-1" is not a number from 0 to 65535')
    badAddress('127.0.0.1:80x', 'port "80x" is not a number from 0 to 65535')
    badAddress('127.0.0.1:5432\nx', 'port "5432\\nx" is not a number from 0 to 65535')
    badAddress(':5432', 'it has no host before the colon (write 127.0.0.1:port, or just the port)')
    badAddress('::1:5432', 'an IPv6 address needs brackets, e.g. [::1]:5432')
    badAddress('[::1]', 'it has no port (write [host]:port)')
    badAddress('[::1]5432', 'an IPv6 address in brackets must be followed by :port, e.g. [::1]:5432')
    badAddress('[1.2.3.4]:80', '"1.2.3.4" in brackets is not an IPv6 address')
    badAddress('[]:80', '"" in brackets is not an IPv6 address')
    badAddress('a b:80', '"a b" is not an IP address or a host name')
    badAddress('host_name:80', '"host_name" is not an IP address or a host name')
    badAddress('\x1b[31m:80', '"\\u001b[31m" is not an IP address or a host name')
  })

  it('tells loopback from public addresses', () => {
    for (const a of ['127.0.0.1:1', '127.8.9.10:1', '[::1]:1', 'localhost:1', '5432'])
      assert.equal(isPublicListen(a), false)
    for (const a of ['0.0.0.0:1', '192.168.1.2:1', '[::]:1', 'my-box.lan:1']) assert.equal(isPublicListen(a), true)
  })
})

describe('a non-loopback listen address must be asked for', () => {
  it('refuses it without the flag, warns with it, says nothing on loopback', () => {
    assert.equal(checkPublicListen('the DNS server', '127.0.0.1:53', undefined, 'Set it'), undefined)
    assert.throws(
      () => checkPublicListen('the DNS server', '0.0.0.0:53', false, 'Set "public": true'),
      (err: WarrenError) => {
        assert.equal(err.code, 'ERR_USAGE')
        assert.equal(
          err.message,
          'the DNS server would listen on 0.0.0.0:53, which is not a loopback address: other machines could use it',
        )
        assert.equal(err.hint, 'Set "public": true, or listen on 127.0.0.1.')
        return true
      },
    )
    assert.equal(
      checkPublicListen('the forward to a/b', '0.0.0.0:53', true, 'Set it'),
      'the forward to a/b listens on 0.0.0.0:53, a non-loopback address: anyone who can reach it uses it as this node',
    )
  })

  it('config: dns.listen off loopback needs dns.public', () => {
    assert.throws(
      () => validateConfig({ dns: { enabled: true, listen: '0.0.0.0:5380' } }),
      (err: WarrenError) =>
        err.code === 'ERR_CONFIG_INVALID' &&
        err.message.includes(
          'dns.public: must be true because listen "0.0.0.0:5380" is not a loopback address and other machines could query it (add "public": true)',
        ),
    )
    const ok = validateConfig({ dns: { enabled: true, listen: '0.0.0.0:5380', public: true } })
    assert.equal(dnsSettings(ok).public, true)
    assert.equal(dnsSettings(validateConfig({})).public, false)
  })

  it('config: a bare port is a loopback listen address, a malformed one says why', () => {
    assert.equal(validateConfig({ proxy: { listen: '4780' } }).proxy?.listen, '4780')
    assert.equal(validateConfig({ dns: { listen: '5380' } }).dns?.listen, '5380')
    assert.throws(
      () => validateConfig({ dns: { listen: '::1:53' } }),
      (err: WarrenError) =>
        err.code === 'ERR_CONFIG_INVALID' &&
        err.message.includes(
          'dns.listen: "::1:53" is not a listen address: an IPv6 address needs brackets, e.g. [::1]:5432',
        ),
    )
  })
})

describe('log lines cannot be forged', () => {
  const evil = 'web\n2026-01-01T00:00:00.000Z info  forged\r\x1b[31mred\u2028next\u202eevil\x00\x7f\u0085\ttab'
  const escaped =
    'web\\n2026-01-01T00:00:00.000Z info  forged\\r\\x1b[31mred\\u2028next\\u202eevil\\x00\\x7f\\x85\\ttab'

  it('escapes control characters, separators and bidi overrides', () => {
    assert.equal(escapeControl(evil), escaped)
    assert.equal(escapeControl('plain ünïcödé → ok'), 'plain ünïcödé → ok')
  })

  it('the daemon logger writes one line per call, escaped', () => {
    const lines: string[] = []
    const log = createLogger({ min: 'debug', out: { write: (s: string) => lines.push(s) } })
    log('info', `refused peer → ${evil}: this node has no service`)
    assert.equal(lines.length, 1)
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z info {2}refused peer → /)
    assert.ok(lines[0]!.endsWith(`${escaped}: this node has no service\n`))
    assert.equal(lines[0]!.split(/[\n\r\u2028\u2029]/).length, 2, 'only the final newline')
    assert.equal(formatLogLine('warn', evil, new Date(0)), `1970-01-01T00:00:00.000Z warn  ${escaped}`)
  })

  it('the CLI prints error messages escaped, keeping the line breaks of a problem list', () => {
    const out: string[] = []
    const write = process.stderr.write
    process.stderr.write = ((s: string) => out.push(s) > 0) as typeof process.stderr.write
    try {
      printError(
        new WarrenError('ERR_PROTOCOL', `refused: \x1b[2J${'\u2028'}x\nsecond problem`, { hint: 'h\x1b]0;t\x07' }),
        false,
      )
    } finally {
      process.stderr.write = write
    }
    assert.deepEqual(out, ['warren: refused: \\x1b[2J\\u2028x\nsecond problem\n', 'hint: h\\x1b]0;t\\x07\n'])
  })
})
