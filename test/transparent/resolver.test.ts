/**
 * Name registration with systemd-resolved, through the real `runTool` and a real fake `resolvectl` script first on
 * PATH that records each argv (systemd-resolved itself does not run here): the exact commands Warren runs, the
 * revert on stop and after a failing command, the lines logged when resolved is absent or turned off, and how
 * `warren doctor` reads resolved's view of the interface.
 */
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import {
  manualLines,
  type ResolverSystem,
  registerNames,
  resolvedLink,
  unregisterNames,
} from '../../src/access/transparent/resolver.ts'
import { runTool } from '../../src/access/transparent/tools.ts'
import type { LogLevel } from '../../src/log.ts'

/** Appends its arguments, tab-separated, as one line to $RESOLVECTL_RECORD; fails the subcommand in $RESOLVECTL_FAIL. */
const SCRIPT = `#!/bin/sh
line="$1"; shift; for a in "$@"; do line="$line	$a"; done
printf '%s\\n' "$line" >> "$RESOLVECTL_RECORD"
case "$line" in
  "$RESOLVECTL_FAIL"*) echo "Failed to set DNS configuration: Access denied" >&2; exit 1 ;;
esac
if [ "$#" = 1 ]; then
  case "$line" in
    dns*) echo "Link 7 ($1): 127.0.0.1:5380" ;;
    domain*) echo "Link 7 ($1): ~warren" ;;
  esac
fi
exit 0
`

describe('systemd-resolved registration through resolvectl', () => {
  let dir: string
  let record: string
  const oldPath = process.env.PATH
  const lines: string[] = []
  const log = (level: LogLevel, message: string): void => {
    lines.push(`${level} ${message}`)
  }
  const resolved: ResolverSystem = { running: () => true, run: runTool }
  const recorded = async (): Promise<string[][]> =>
    (await readFile(record, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'))

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-resolvectl-'))
    record = join(dir, 'argv')
    await writeFile(join(dir, 'resolvectl'), SCRIPT)
    await chmod(join(dir, 'resolvectl'), 0o755)
    process.env.PATH = `${dir}:${oldPath}`
    process.env.RESOLVECTL_RECORD = record
  })
  beforeEach(async () => {
    await rm(record, { force: true })
    lines.length = 0
    process.env.RESOLVECTL_FAIL = '(none)'
  })
  after(async () => {
    process.env.PATH = oldPath
    delete process.env.RESOLVECTL_RECORD
    delete process.env.RESOLVECTL_FAIL
    await rm(dir, { recursive: true, force: true })
  })

  it('registers the DNS server for ~warren on the interface, and reverts it', async () => {
    const status = await registerNames({
      iface: 'warren0',
      tld: 'warren',
      dnsListen: '127.0.0.1:5380',
      useResolved: true,
      log,
      system: resolved,
    })
    assert.deepEqual(status, {
      kind: 'systemd-resolved',
      interface: 'warren0',
      dns: '127.0.0.1:5380',
      domain: '~warren',
    })
    assert.deepEqual(await recorded(), [
      ['dns', 'warren0', '127.0.0.1:5380'],
      ['domain', 'warren0', '~warren'],
      ['default-route', 'warren0', 'false'],
    ])
    assert.deepEqual(lines, [
      'info transparent: systemd-resolved sends .warren names to 127.0.0.1:5380 (interface warren0)',
    ])
    await unregisterNames(status, resolved)
    assert.deepEqual((await recorded()).at(-1), ['revert', 'warren0'])
  })

  it('reverts and falls back to the lines when resolvectl fails', async () => {
    process.env.RESOLVECTL_FAIL = 'domain'
    const status = await registerNames({
      iface: 'wrn1',
      tld: 'mesh',
      dnsListen: '127.0.0.1:5380',
      useResolved: true,
      log,
      system: resolved,
    })
    assert.deepEqual(await recorded(), [
      ['dns', 'wrn1', '127.0.0.1:5380'],
      ['domain', 'wrn1', '~mesh'],
      ['revert', 'wrn1'],
    ])
    assert.deepEqual(status, {
      kind: 'manual',
      reason:
        'resolvectl failed: `resolvectl domain wrn1 ~mesh` failed: Failed to set DNS configuration: Access denied',
      lines: manualLines('wrn1', 'mesh', '127.0.0.1:5380'),
    })
    await unregisterNames(status, resolved)
    assert.equal((await recorded()).length, 3, 'nothing to revert for manual names')
  })

  for (const [what, useResolved, running, reason] of [
    ['systemd-resolved does not run', true, false, 'systemd-resolved is not running'],
    ['transparent.resolved is false', false, true, 'transparent.resolved is false'],
  ] as const) {
    it(`logs the exact lines to add when ${what}, and runs nothing`, async () => {
      const status = await registerNames({
        iface: 'warren0',
        tld: 'warren',
        dnsListen: '[::1]:53',
        useResolved,
        log,
        system: { running: () => running, run: runTool },
      })
      assert.equal(status.kind, 'manual')
      assert.deepEqual(lines, [
        `info transparent: .warren names are not registered with the system resolver (${reason}); add one of:`,
        "info   systemd-resolved:  resolvectl dns warren0 [::1]:53 && resolvectl domain warren0 '~warren' && resolvectl default-route warren0 false",
        'info   dnsmasq (/etc/dnsmasq.d/warren.conf):  server=/warren/::1#53',
        'info   unbound (unbound.conf):  server: domain-insecure: "warren"  and  stub-zone: name: "warren" stub-addr: ::1@53',
        'info   macOS (/etc/resolver/warren):  nameserver ::1  and  port 53',
      ])
      assert.deepEqual(await recorded(), [])
    })
  }

  it("reads resolved's DNS servers and routing domains for the interface (doctor)", async () => {
    assert.deepEqual(await resolvedLink('warren0', resolved), { dns: ['127.0.0.1:5380'], domains: ['~warren'] })
    assert.deepEqual(await recorded(), [
      ['dns', 'warren0'],
      ['domain', 'warren0'],
    ])
    process.env.RESOLVECTL_FAIL = 'dns'
    assert.equal(await resolvedLink('warren0', resolved), undefined)
    assert.equal(await resolvedLink('warren0', { running: () => false, run: runTool }), undefined)
  })
})
