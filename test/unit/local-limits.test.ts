/**
 * The local-user lookup's parsing of /proc/net/tcp and tcp6 lines (both byte orders), and the exact errors for
 * bad values of the keys that bound local clients (proxy.allowOtherUsers, proxy.maxConnections*, dns.maxNames).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isLoopbackAddress, ownerIn, procKeys } from '../../src/access/local-user.ts'
import { accessSettings, dnsSettings } from '../../src/access/settings.ts'
import { validateConfig } from '../../src/config/load.ts'
import { isWarrenError } from '../../src/errors.ts'

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
const line = (sl: number, local: string, rem: string, st: string, uid: number) =>
  `   ${sl}: ${local} ${rem} ${st} 00000000:00000000 00:00000000 00000000  ${uid}        0 12345 1 0 20 4 30 10 -1\n`

describe('local users: /proc/net/tcp', () => {
  it('spells addresses as the kernel does (little- and big-endian hosts)', () => {
    assert.deepEqual(procKeys('127.0.0.1', 4780, true), {
      tcp: ['0100007F:12AC'],
      tcp6: ['0000000000000000FFFF00000100007F:12AC'],
    })
    assert.deepEqual(procKeys('127.0.0.1', 4780, false).tcp, ['7F000001:12AC'])
    assert.deepEqual(procKeys('::ffff:127.0.0.2', 1, true).tcp, ['0200007F:0001'])
    assert.deepEqual(procKeys('::1', 443, true), { tcp: [], tcp6: ['00000000000000000000000001000000:01BB'] })
    assert.deepEqual(procKeys('not an address', 1, true), { tcp: [], tcp6: [] })
  })

  it('finds the owner of the client’s line, not of the server’s, nor of a TIME_WAIT line', () => {
    const client = '0100007F:C350' // 127.0.0.1:50000
    const server = '0100007F:12AC' // 127.0.0.1:4780
    const table =
      HEAD +
      line(0, server, '00000000:0000', '0A', 0) +
      line(1, server, client, '01', 1000) + // our accepted socket: the daemon's uid
      line(2, client, server, '01', 65534) // the client's socket
    assert.equal(ownerIn(table, [`${client} ${server}`]), 65534)
    assert.equal(ownerIn(table, [`${client} 0100007F:0050`]), undefined)
    const waiting = HEAD + line(0, client, server, '06', 0)
    assert.equal(ownerIn(waiting, [`${client} ${server}`]), undefined)
    assert.equal(ownerIn(HEAD + line(0, client, server, '08', 1001), [`${client} ${server}`]), 1001) // CLOSE_WAIT
  })

  it('tells loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a)
    for (const a of ['10.0.0.1', '::2', '::ffff:10.0.0.1', '']) assert.equal(isLoopbackAddress(a), false, a)
  })
})

describe('local limits: config errors', () => {
  const cases: [unknown, string][] = [
    [{ proxy: { maxConnections: 0 } }, 'proxy.maxConnections: 0 is too small: use a number of at least 1'],
    [{ proxy: { allowOtherUsers: 'yes' } }, 'proxy.allowOtherUsers: expected boolean, got "yes"'],
    [{ proxy: { maxConnectionsPerClient: 1.5 } }, 'proxy.maxConnectionsPerClient: expected a whole number, got 1.5'],
    [{ dns: { maxNames: 8 } }, 'dns.maxNames: 8 is too small: use a number of at least 16'],
  ]
  for (const [input, message] of cases) {
    it(message, () => {
      assert.throws(
        () => validateConfig(input as never, 'config.json'),
        (err: unknown) =>
          isWarrenError(err, 'ERR_CONFIG_INVALID') && err.message === `config.json is invalid:\n  ${message}`,
      )
    })
  }

  it('defaults: other users refused, 1024 connections, 256 per client, 65536 names', () => {
    const c = validateConfig({}, 'config.json')
    const a = accessSettings(c)
    assert.deepEqual([a.allowOtherUsers, a.maxConnections, a.maxConnectionsPerClient], [false, 1024, 256])
    const d = dnsSettings(c)
    assert.deepEqual([d.allowOtherUsers, d.maxNames], [false, 65_536])
    const on = validateConfig({ proxy: { allowOtherUsers: true }, dns: { maxNames: 16 } }, 'config.json')
    assert.deepEqual([accessSettings(on).allowOtherUsers, dnsSettings(on).allowOtherUsers], [true, true])
    assert.equal(dnsSettings(on).maxNames, 16)
  })
})
