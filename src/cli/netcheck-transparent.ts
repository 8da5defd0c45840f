/**
 * The transparent-mode part of `warren netcheck` / `warren doctor`: whether TCP to the service ranges is captured
 * (the daemon's listener, the nftables table `inet warren`, the interface) and whether `.<tld>` names resolve
 * through the system resolver (a real lookup of this node's own name), with what to do for each problem found.
 * Works with or without a running daemon; changes nothing.
 */
import { lookup } from 'node:dns/promises'
import type { Command } from 'commander'
import { probeSystem, type SystemProbe } from '../access/transparent/check.ts'
import { contains, formatCidr } from '../access/transparent/cidr.ts'
import type { ResolverSystem } from '../access/transparent/resolver.ts'
import { manualLines } from '../access/transparent/resolver.ts'
import { TRANSPARENT_ENV, transparentSettings } from '../access/transparent/settings.ts'
import type { TransparentStatus } from '../access/transparent/transparent.ts'
import { WarrenClient } from '../client/client.ts'
import type { HomePaths } from '../config/home.ts'
import { loadConfig, validateConfig } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { isWarrenError } from '../errors.ts'
import { homeOf, say, sayJson, table } from './common.ts'

export interface TransparentProblem {
  problem: string
  fix: string
}

export interface TransparentReport {
  /** No problem found (transparent mode off and nothing left behind counts as ok). */
  ok: boolean
  daemon: { running: boolean; transparent: boolean }
  capture: {
    /** The daemon captures: its listener runs and the table and interface are there. */
    active: boolean
    interface: string
    ipv4Range: string
    ipv6Range?: string
    table: SystemProbe['table']
    link: SystemProbe['interface']
    connections?: TransparentStatus['connections']
  }
  names: {
    /** `true`/`false` from a lookup of this node's own name; undefined when there is no DNS server to ask. */
    working?: boolean
    via: 'systemd-resolved' | 'manual' | 'none'
    dns?: string
    lookup?: { name: string; addresses?: string[]; error?: string }
    resolved: SystemProbe['resolved']
    /** The lines to add to the system's resolver (when names do not work and resolved has no registration). */
    lines?: string[]
  }
  problems: TransparentProblem[]
}

interface DaemonView {
  status?: { idBase36: string; dns?: { listen: string }; transparent?: TransparentStatus }
}

async function daemonView(home: HomePaths): Promise<DaemonView> {
  let client: WarrenClient
  try {
    client = await WarrenClient.connect({ home })
  } catch (err) {
    if (isWarrenError(err, 'ERR_DAEMON_NOT_RUNNING')) return {}
    throw err
  }
  try {
    return { status: (await client.status()) as unknown as DaemonView['status'] & object }
  } finally {
    client.close()
  }
}

async function homeConfig(home: HomePaths): Promise<Config> {
  try {
    return await loadConfig(home.config)
  } catch (err) {
    if (isWarrenError(err, 'ERR_HOME_NOT_INITIALIZED')) return validateConfig({}, 'defaults')
    throw err
  }
}

/** Looks `name` up through the system resolver (getaddrinfo, as every program does), bounded in time. */
async function systemLookup(name: string, timeoutMs: number): Promise<{ addresses?: string[]; error?: string }> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<{ error: string }>((r) => {
    timer = setTimeout(() => r({ error: `no answer within ${timeoutMs} ms` }), timeoutMs)
  })
  const asked = lookup(name, { all: true }).then(
    (all) => ({ addresses: all.map((a) => a.address) }),
    (err: NodeJS.ErrnoException) => ({ error: err.code ?? err.message }),
  )
  try {
    return await Promise.race([asked, late])
  } finally {
    clearTimeout(timer)
  }
}

/** How to turn capture on, for a report where it is off. */
export const HOW_TO_START =
  'warren up --transparent (as root, or after `setcap cap_net_admin+ep` on the node binary; docs/transparent.md)'

const who = (item: { owner?: { pid: number; running: boolean } }): string =>
  item.owner === undefined ? 'an unknown process' : `pid ${item.owner.pid}${item.owner.running ? '' : ' (gone)'}`

/** Checks transparent mode for `home`; `opts.resolver` replaces systemd-resolved and `resolvectl` (tests). */
export async function checkTransparent(
  home: HomePaths,
  opts: { resolver?: ResolverSystem; lookupTimeoutMs?: number } = {},
): Promise<TransparentReport> {
  const settings = transparentSettings(await homeConfig(home), { ...process.env, [TRANSPARENT_ENV]: undefined })
  const { status } = await daemonView(home)
  const live = status?.transparent
  const probe = await probeSystem(settings.interface, opts.resolver === undefined ? {} : { resolver: opts.resolver })
  const problems: TransparentProblem[] = []
  const tableOk = probe.table.state === 'present' || probe.table.state === 'unknown'
  const active = live !== undefined && tableOk && probe.interface.state === 'present'
  const stale = [probe.table, probe.interface].filter((i) => i.state === 'present' && i.owner?.running !== true)
  const iface = settings.interface

  if (live === undefined) {
    const other = [probe.table, probe.interface].find((i) => i.state === 'present' && i.owner?.running === true)
    if (stale.length > 0) {
      problems.push({
        problem: `Warren's ${stale.map((i) => (i === probe.table ? 'nftables table inet warren' : `interface ${iface}`)).join(' and ')} ${stale.length === 1 ? 'was' : 'were'} left by ${who(stale[0]!)}`,
        fix: `\`warren up --transparent\` removes them at start; or remove them as root: nft delete table inet warren; ip link del dev ${iface}`,
      })
    } else if (other !== undefined && settings.enabled) {
      problems.push({
        problem: `another Warren daemon (${who(other)}) captures the service ranges on this host`,
        fix: 'Stop that daemon (warren down with its WARREN_HOME) before starting this one with --transparent.',
      })
    } else if (settings.enabled && status === undefined) {
      problems.push({
        problem: 'config.json turns transparent mode on, but no daemon runs for this home',
        fix: 'Start it: warren up (as root, or with `setcap cap_net_admin+ep` on the node binary).',
      })
    } else if (settings.enabled) {
      problems.push({
        problem: 'config.json turns transparent mode on, but the running daemon does not capture',
        fix: 'Restart it (warren down; warren up) and read its log for the transparent: lines.',
      })
    }
  } else {
    if (probe.table.state === 'absent') {
      problems.push({
        problem: 'the daemon runs in transparent mode but the nftables table inet warren is gone: nothing is captured',
        fix: 'Restart the daemon (warren down; warren up --transparent); check that no firewall tool flushes all tables.',
      })
    }
    if (probe.interface.state === 'absent') {
      problems.push({
        problem: `the daemon runs in transparent mode but the interface ${iface} is gone: the ranges have no route`,
        fix: 'Restart the daemon (warren down; warren up --transparent).',
      })
    }
  }

  // names: a real lookup of this node's own name through the system resolver
  const dns = status?.dns?.listen
  const names: TransparentReport['names'] = { via: 'none', resolved: probe.resolved }
  if (dns !== undefined) names.dns = dns
  if (live?.names !== undefined) names.via = live.names.kind
  if (status !== undefined && dns !== undefined) {
    const name = `${status.idBase36}.${settings.tld}`
    const seen = await systemLookup(name, opts.lookupTimeoutMs ?? 5_000)
    names.lookup = { name, ...seen }
    const ranges = [settings.ipv4Range, settings.ipv6Range]
    names.working = (seen.addresses ?? []).some((a) => ranges.some((r) => contains(r, a)))
    if (!names.working) {
      names.lines = manualLines(iface, settings.tld, dns)
      // without capture, names through the system resolver are optional (the access port resolves by itself)
      if (live !== undefined)
        problems.push({
          problem: `${name} does not resolve to a Warren address through the system resolver (${seen.error ?? `got ${seen.addresses?.join(', ')}`}): .${settings.tld} names will not work`,
          fix:
            live?.names?.kind === 'systemd-resolved'
              ? `resolved has ${iface}: dns ${probe.resolved.dns?.join(' ') ?? '-'}, domains ${probe.resolved.domains?.join(' ') ?? '-'}; restart the daemon, or add one of the lines below`
              : `Add one of these lines to the system's resolver (${probe.resolved.running ? 'or let Warren register with systemd-resolved: "transparent": {"resolved": true}' : 'systemd-resolved is not running'}):`,
        })
    }
  } else if (live !== undefined) {
    problems.push({
      problem: 'the daemon runs no DNS server: .warren names cannot resolve',
      fix: 'Set "dns": {"enabled": true} in config.json and restart the daemon.',
    })
  }

  const report: TransparentReport = {
    ok: problems.length === 0,
    daemon: { running: status !== undefined, transparent: live !== undefined },
    capture: {
      active,
      interface: iface,
      ipv4Range: live?.ipv4Range ?? formatCidr(settings.ipv4Range),
      ...(live?.ipv6Range === undefined ? {} : { ipv6Range: live.ipv6Range }),
      table: probe.table,
      link: probe.interface,
      ...(live === undefined ? {} : { connections: live.connections }),
    },
    names,
    problems,
  }
  return report
}

function itemText(item: SystemProbe['table'], what: string): string {
  if (item.state === 'unknown') return `${what}: cannot tell (${item.reason ?? 'unreadable'})`
  if (item.state === 'absent') return `${what}: absent`
  return `${what}: present, added by ${who(item)}`
}

/** The report as text: capture, names, then each problem with its fix. */
export function formatTransparent(r: TransparentReport): string {
  const c = r.capture
  const ranges = c.ipv6Range === undefined ? c.ipv4Range : `${c.ipv4Range} and ${c.ipv6Range}`
  const capture = c.active
    ? `active: TCP to ${ranges} on any port goes to the daemon`
    : r.daemon.transparent
      ? 'NOT working'
      : r.daemon.running
        ? 'off (the daemon runs without --transparent)'
        : 'off (no daemon runs for this home)'
  const n = r.names
  const names =
    n.working === undefined
      ? 'cannot tell (no DNS server of this home runs)'
      : n.working
        ? `working: ${n.lookup?.name} → ${n.lookup?.addresses?.join(', ')}${n.via === 'systemd-resolved' ? ' (registered with systemd-resolved)' : ''}`
        : `NOT working: ${n.lookup?.name}: ${n.lookup?.error ?? `got ${n.lookup?.addresses?.join(', ')}`}`
  const rows: [string, string][] = [
    ['capture', capture],
    ['', itemText(c.table, 'nftables table inet warren')],
    ['', itemText(c.link, `interface ${c.link.name}`)],
  ]
  if (c.connections !== undefined) {
    const k = c.connections
    rows.push([
      '',
      `connections: ${k.accepted} accepted, ${k.tunneled} tunneled, ${k.refused} refused, ${k.active} open`,
    ])
  }
  rows.push(['names', names])
  if (n.dns !== undefined) rows.push(['', `DNS server ${n.dns}`])
  rows.push([
    '',
    `systemd-resolved: ${n.resolved.running ? `running${n.resolved.domains === undefined ? '' : `, ${c.link.name} has ${n.resolved.domains.join(' ') || 'no domains'}`}` : 'not running'}`,
  ])
  const out = ['transparent mode', table(rows, '  ')]
  for (const p of r.problems) out.push(`  problem: ${p.problem}`, `    fix: ${p.fix}`)
  if (n.lines !== undefined) {
    if (r.daemon.transparent === false) out.push('  for service names in every program (with capture on), add one of:')
    out.push(...n.lines.map((l) => `    ${l}`))
  }
  if (!r.daemon.transparent && r.problems.length === 0) {
    out.push(`  to capture: ${HOW_TO_START}`)
  }
  if (r.ok) out.push('  no problem found')
  return out.join('\n')
}

/**
 * Runs the check for `netcheck --transparent` (true: handled, print and return) or returns false for the full
 * netcheck, which appends {@link netcheckTransparentSection}.
 */
export async function transparentOnly(opts: { json?: boolean; transparent?: boolean }, cmd: Command): Promise<boolean> {
  if (opts.transparent !== true) return false
  const r = await checkTransparent(homeOf(cmd))
  if (opts.json === true) sayJson(r)
  else say(formatTransparent(r))
  return true
}
