/**
 * `warren netcheck --transparent` (and `warren doctor`) in a network namespace, with the real CLI: before the daemon
 * runs, with `up --transparent` (capture active, names resolving through the system resolver, then not resolving
 * once the namespace's resolver points elsewhere: the exact lines to add), after stop, and after a SIGKILL (the
 * leftovers named with how to remove them). Text and --json.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import type { TransparentReport } from '../../src/cli/netcheck-transparent.ts'
import { WarrenClient } from '../../src/client/client.ts'
import type { HomePaths } from '../../src/config/home.ts'
import { MAIN, NODE } from '../support/cli.ts'
import { NsLab, nsSkip, type Run } from './ns-lab.ts'

describe('netcheck --transparent / doctor', { skip: nsSkip }, () => {
  let lab: NsLab
  let home: HomePaths
  let idBase36: string

  const cli = (args: string[]): Promise<Run> =>
    lab.exec(NODE, [MAIN, ...args], true, { env: { WARREN_HOME: home.dir }, timeoutMs: 60_000 })
  const report = async (cmd = 'netcheck'): Promise<TransparentReport> => {
    const r = await cli([cmd, '--transparent', '--json'])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as TransparentReport
  }

  before(async () => {
    lab = await NsLab.create()
    const ports = await lab.servers()
    const a = await lab
      .daemon(await lab.home({ services: { web: { target: `/tcp/${ports.http}`, allow: ['*'] } } }))
      .ready()
    const c = await WarrenClient.connect({ home: a.home })
    const ticket = (await c.id()).ticket
    c.close()
    home = await lab.home({ peers: { a: ticket }, dns: { enabled: true, listen: '127.0.0.1:53' } })
  })
  after(async () => {
    await lab?.close()
  })

  it('before up: capture off, nothing on the system, how to turn it on', async () => {
    const r = await report()
    assert.equal(r.ok, true)
    assert.deepEqual(r.daemon, { running: false, transparent: false })
    assert.equal(r.capture.active, false)
    assert.deepEqual(r.capture.table, { state: 'absent' })
    assert.deepEqual(r.capture.link, { name: 'warren0', state: 'absent' })
    assert.equal(r.names.working, undefined)
    const text = await cli(['doctor', '--transparent'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^ {2}capture {2}off \(no daemon runs for this home\)$/m)
    assert.match(
      text.stdout,
      /^ {2}to capture: warren up --transparent \(as root, or after `setcap cap_net_admin\+ep` on the node binary/m,
    )
  })

  it('with up --transparent: capture active, names resolve; a broken resolver gets the exact lines', async () => {
    const d = await lab.daemon(home, ['--transparent']).ready()
    const c = await WarrenClient.connect({ home })
    idBase36 = (await c.id()).idBase36
    c.close()
    const r = await report('doctor')
    assert.equal(r.ok, true, JSON.stringify(r.problems))
    assert.deepEqual(r.daemon, { running: true, transparent: true })
    assert.equal(r.capture.active, true)
    assert.equal(r.capture.ipv4Range, '100.64.0.0/10')
    assert.equal(r.capture.ipv6Range, 'fd77:6172:7265:6e00::/64')
    assert.deepEqual(r.capture.table, { state: 'present', owner: { pid: d.child.pid, running: true } })
    assert.equal(r.capture.link.state, 'present')
    assert.equal(r.names.working, true)
    assert.equal(r.names.via, 'manual') // no systemd-resolved here
    assert.equal(r.names.dns, '127.0.0.1:53')
    assert.equal(r.names.lookup?.name, `${idBase36}.warren`)
    assert.ok(
      r.names.lookup?.addresses?.some((a) => a.startsWith('100.')),
      JSON.stringify(r.names),
    )
    const text = await cli(['netcheck', '--transparent'])
    assert.match(
      text.stdout,
      /^ {2}capture {2}active: TCP to 100\.64\.0\.0\/10 and fd77:6172:7265:6e00::\/64 on any port goes to the daemon$/m,
    )
    assert.match(text.stdout, /^ {11}nftables table inet warren: present, added by pid \d+$/m)
    assert.match(
      text.stdout,
      new RegExp(
        `^ {2}names {4}working: ${idBase36}\\.warren → (fd77:6172:7265:6e00:[0-9a-f:]+, )?100\\.\\d+\\.\\d+\\.\\d+$`,
        'm',
      ),
    )

    // the full netcheck carries the same report under `transparent`
    const full = await cli(['netcheck', '--json'])
    assert.equal(full.code, 0, full.stderr)
    const doc = JSON.parse(full.stdout) as { udp: boolean; transparent: TransparentReport }
    assert.equal(typeof doc.udp, 'boolean')
    assert.equal(doc.transparent.capture.active, true)
    assert.equal(doc.transparent.names.working, true)

    // the namespace's resolver no longer asks Warren's DNS server: names fail, the lines to add are printed
    await writeFile(`/etc/netns/${lab.name}/resolv.conf`, 'nameserver 127.0.0.9\noptions timeout:1 attempts:1\n')
    try {
      const broken = await report()
      assert.equal(broken.ok, false)
      assert.equal(broken.capture.active, true)
      assert.equal(broken.names.working, false)
      assert.deepEqual(broken.names.lines, [
        "systemd-resolved:  resolvectl dns warren0 127.0.0.1:53 && resolvectl domain warren0 '~warren' && resolvectl default-route warren0 false",
        'dnsmasq (/etc/dnsmasq.d/warren.conf):  server=/warren/127.0.0.1#53',
        'unbound (unbound.conf):  server: domain-insecure: "warren"  and  stub-zone: name: "warren" stub-addr: 127.0.0.1@53',
        'macOS (/etc/resolver/warren):  nameserver 127.0.0.1  and  port 53',
      ])
      assert.equal(broken.problems.length, 1)
      assert.match(
        broken.problems[0]!.problem,
        new RegExp(`^${idBase36}\\.warren does not resolve to a Warren address through the system resolver \\(`),
      )
      assert.equal(
        broken.problems[0]!.fix,
        "Add one of these lines to the system's resolver (systemd-resolved is not running):",
      )
      const t = await cli(['doctor', '--transparent'])
      assert.equal(t.code, 0, t.stderr)
      assert.match(t.stdout, /^ {4}dnsmasq \(\/etc\/dnsmasq\.d\/warren\.conf\): {2}server=\/warren\/127\.0\.0\.1#53$/m)
    } finally {
      await writeFile(`/etc/netns/${lab.name}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n')
    }

    assert.equal((await d.stop()).code, 0, d.stderr)
    const stopped = await report()
    assert.equal(stopped.ok, true, JSON.stringify(stopped.problems))
    assert.deepEqual(stopped.daemon, { running: false, transparent: false })
    assert.deepEqual(stopped.capture.table, { state: 'absent' })
    assert.deepEqual(stopped.capture.link, { name: 'warren0', state: 'absent' })
  })

  it('after a SIGKILL: the leftovers, who left them and how to remove them', async () => {
    const d = await lab.daemon(home, ['--transparent']).ready()
    const pid = d.child.pid!
    assert.equal((await d.stop('SIGKILL')).signal, 'SIGKILL')
    const r = await report()
    assert.equal(r.ok, false)
    assert.deepEqual(r.capture.table, { state: 'present', owner: { pid, running: false } })
    assert.deepEqual(r.problems, [
      {
        problem: `Warren's nftables table inet warren and interface warren0 were left by pid ${pid} (gone)`,
        fix: '`warren up --transparent` removes them at start; or remove them as root: nft delete table inet warren; ip link del dev warren0',
      },
    ])
    // the next start clears them, its stop leaves nothing
    const again = await lab.daemon(home, ['--transparent']).ready()
    assert.equal((await again.stop()).code, 0, again.stderr)
    assert.deepEqual(await lab.leftovers(), [])
    assert.equal((await report()).ok, true)
  })
})
