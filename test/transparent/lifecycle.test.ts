/**
 * Transparent mode's lifecycle and refusals, in a network namespace: leftovers of a SIGKILL removed at the next
 * start, a second daemon refused, no CAP_NET_ADMIN refused with what to do, a range that overlaps a route refused
 * naming the route and the key, and a configured range used for names and capture.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { WarrenClient } from '../../src/client/client.ts'
import { MAIN, NODE } from '../support/cli.ts'
import { NsLab, nsSkip } from './ns-lab.ts'

describe('transparent mode lifecycle', { skip: nsSkip }, () => {
  let lab: NsLab
  let ticket: string

  before(async () => {
    lab = await NsLab.create()
    const ports = await lab.servers()
    const a = await lab
      .daemon(await lab.home({ services: { web: { target: `/tcp/${ports.http}`, allow: ['*'] } } }))
      .ready()
    const c = await WarrenClient.connect({ home: a.home })
    ticket = (await c.id()).ticket
    c.close()
  })
  after(async () => {
    await lab?.close()
  })

  it('removes the leftovers of a SIGKILLed daemon at the next start, and everything at stop', async () => {
    const home = await lab.home({ peers: { a: ticket }, dns: { enabled: true, listen: '127.0.0.1:53' } })
    const first = await lab.daemon(home, ['--transparent']).ready()
    const killed = await first.stop('SIGKILL')
    assert.equal(killed.signal, 'SIGKILL')
    const left = await lab.leftovers()
    assert.ok(left.includes('nft table inet warren') && left.includes('interface warren0'), left.join('\n'))
    const second = await lab.daemon(home, ['--transparent'], { SUDO_UID: '65534' }).ready()
    assert.match(second.stderr, /removing nftables table inet warren left by pid \d+, no longer running/)
    const r = await lab.exec('curl', ['-sS', '--max-time', '20', 'http://web.a.warren:8080/after-restart'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'hello from a: GET /after-restart\n')
    // the user who ran the daemon through sudo is captured too
    const asUser = await lab.exec('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'curl',
      '-sS',
      '--max-time',
      '20',
      'http://web.a.warren/sudo',
    ])
    assert.equal(asUser.code, 0, asUser.stderr)
    assert.equal(asUser.stdout, 'hello from a: GET /sudo\n')
    assert.equal((await second.stop()).code, 0, second.stderr)
    assert.deepEqual(await lab.leftovers(), [])
  })

  it('refuses a second daemon in transparent mode on the same host', async () => {
    const first = await lab
      .daemon(await lab.home({ dns: { enabled: true, listen: '127.0.0.1:0' } }), ['--transparent'])
      .ready()
    const other = lab.daemon(await lab.home(), ['--transparent'])
    const exit = await other.exited
    assert.equal(exit.code, 6, other.stderr)
    assert.match(
      other.stderr,
      new RegExp(
        `warren: another Warren daemon \\(pid ${first.child.pid}: .*\\) already runs in transparent mode on this host`,
      ),
    )
    assert.match(other.stderr, /hint: Stop that daemon/)
    // the refused daemon took nothing away from the running one
    assert.ok((await lab.leftovers()).includes('nft table inet warren'))
    assert.equal((await first.stop()).code, 0, first.stderr)
    assert.deepEqual(await lab.leftovers(), [])
  })

  it('without CAP_NET_ADMIN, fails saying what to do and changes nothing', async () => {
    const home = await lab.home()
    const r = await lab.exec(
      'setpriv',
      ['--bounding-set', '-net_admin', '--inh-caps', '-net_admin', NODE, MAIN, 'up', '--transparent'],
      true,
      {
        env: { WARREN_HOME: home.dir },
      },
    )
    assert.equal(r.code, 6, r.stderr)
    assert.match(
      r.stderr,
      /warren: transparent mode needs CAP_NET_ADMIN \(to add its interface, routes and nftables table\), and this daemon \(uid 0\) does not have it/,
    )
    assert.match(
      r.stderr,
      /hint: Run the daemon as root \(sudo warren up --transparent\), or give Node the capability once: sudo setcap cap_net_admin\+ep \S+ ; or start without --transparent and use the access port/,
    )
    assert.deepEqual(await lab.leftovers(), [])
  })

  it('refuses a range that overlaps an existing route, naming the route and the key', async () => {
    await lab.exec('ip', ['route', 'add', '100.100.0.0/16', 'dev', 'lo', 'table', '52'])
    try {
      const d = lab.daemon(await lab.home(), ['--transparent'])
      const exit = await d.exited
      assert.equal(exit.code, 3, d.stderr)
      assert.match(
        d.stderr,
        /warren: transparent\.ipv4Range 100\.64\.0\.0\/10 overlaps the route "100\.100\.0\.0\/16 dev lo table 52" on this host/,
      )
      assert.match(d.stderr, /hint: Set "transparent": \{ "ipv4Range": "<a free prefix>" \} in config\.json/)
      assert.deepEqual(await lab.leftovers(), ['100.100.0.0/16 dev lo table 52 scope link ']) // the test's own route
    } finally {
      await lab.exec('ip', ['route', 'del', '100.100.0.0/16', 'dev', 'lo', 'table', '52'])
    }
  })

  it('derives and captures names in a configured range', async () => {
    const home = await lab.home({
      peers: { a: ticket },
      dns: { enabled: true, listen: '127.0.0.1:53' },
      proxy: { listen: '127.0.0.1:0', allowOtherUsers: true },
      transparent: {
        enabled: true,
        ipv4Range: '10.77.0.0/16',
        ipv6Range: 'fd00:1234:5678:9a00::/64',
        interface: 'wtest0',
      },
    })
    const d = await lab.daemon(home).ready()
    const names = await lab.exec('getent', ['ahosts', 'web.a.warren'])
    assert.match(names.stdout, /^10\.77\.\d+\.\d+ /m)
    assert.match(names.stdout, /^fd00:1234:5678:9a00:/m)
    for (const flag of ['-4', '-6']) {
      const r = await lab.exec('curl', ['-sS', flag, '--max-time', '20', 'http://web.a.warren:5000/r'])
      assert.equal(r.code, 0, `${flag}: ${r.stderr}`)
      assert.equal(r.stdout, 'hello from a: GET /r\n')
    }
    // proxy.allowOtherUsers: every local user is captured
    const asUser = await lab.exec('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'curl',
      '-sS',
      '--max-time',
      '20',
      'http://web.a.warren/other',
    ])
    assert.equal(asUser.code, 0, asUser.stderr)
    const routes = await lab.exec('ip', ['route', 'show', 'dev', 'wtest0'])
    assert.match(routes.stdout, /^10\.77\.0\.0\/16 /m)
    assert.equal((await d.stop()).code, 0, d.stderr)
    assert.deepEqual(await lab.leftovers('wtest0'), [])
    assert.equal((await lab.exec('ip', ['route', 'show', '10.77.0.0/16'])).stdout, '')
  })

  it('rejects a malformed range in config.json', async () => {
    const home = await lab.home()
    const { writeConfig } = await import('../support/daemon.ts')
    const cfg = JSON.parse(await (await import('node:fs/promises')).readFile(home.config, 'utf8'))
    await writeConfig(home, {
      ...cfg,
      transparent: { enabled: true, ipv4Range: '10.0.0.0/33', ipv6Range: 'fd00::/48' },
    })
    const d = lab.daemon(home)
    assert.equal((await d.exited).code, 3, d.stderr)
    assert.match(
      d.stderr,
      /transparent\.ipv4Range: "10\.0\.0\.0\/33" is not an IPv4 prefix \/8 to \/24 \(address\/length\)/,
    )
    assert.match(d.stderr, /transparent\.ipv6Range: "fd00::\/48" is not an IPv6 prefix \/64 \(address\/length\)/)
  })
})
