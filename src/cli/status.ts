/** `warren status`: what the daemon is doing — addresses, services, forwards, peers (with their path), streams. */
import type { Command } from 'commander'
import type { DiscoveryStatus } from '../discovery/discovery.ts'
import type { ForwardError, ForwardInfo, NodeStatus, ServiceInfo } from '../node/types.ts'
import { describeRelayEntry } from '../relay/client/relay-entries.ts'
import type { DirectPathStatus } from '../traversal/upgrade/types.ts'
import { describeUntested } from '../traversal/upgrade/untested.ts'
import { formatPath, say, sayJson, table, withClient } from './common.ts'
import { formatPortMapping } from './status-portmap.ts'
import { formatTraffic } from './status-traffic.ts'

/** The dashboard on the access port's own origin (src/access/local-pages.ts), when the access port runs. */
function dashboardRow(st: NodeStatus): [string, string][] {
  if (st.access === undefined) return []
  return [['dashboard', `http://warren.localhost:${st.access.listen.slice(st.access.listen.lastIndexOf(':') + 1)}/`]]
}

/** `3h 4m`, `12m 5s`, `8s`. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000)
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60, s % 60]
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  if (m > 0) return `${m}m ${sec}s`
  return `${sec}s`
}

/** Who may use a service, in words. */
export function describeAllow(svc: Pick<ServiceInfo, 'allow'>): string {
  if (svc.allow === undefined) return 'every node in peers'
  if (svc.allow.includes('*')) return 'everyone'
  return svc.allow.length === 0 ? 'nobody' : svc.allow.join(', ')
}

/**
 * The direct-path state behind a peer's path, in words (empty for a plain direct path): `(punching)`,
 * `(punching, try 2)`, `(re-punch 2 running; the direct path was lost 1 time)`, `(<why it is relayed>; next re-punch in 4s)`,
 * `(<why the first upgrade failed>; next try in 1s)`.
 */
export function formatUpgrade(u: DirectPathStatus | undefined, now = Date.now()): string {
  if (u === undefined) return ''
  const lost = u.lost === undefined ? '' : `the direct path was lost ${u.lost} time${u.lost === 1 ? '' : 's'}`
  if (u.state === 'direct') return lost === '' ? '' : `  (re-punched; ${lost})`
  if (u.state === 'upgrading') {
    if (u.attempt !== undefined) return `  (re-punch ${u.attempt} running; ${lost || 'after a loss'})`
    return u.retry === undefined ? '  (punching)' : `  (punching, try ${u.retry + 1})`
  }
  const what = u.attempt === undefined ? 'next try' : 'next re-punch'
  const next = u.retryAt === undefined ? '' : `; ${what} in ${formatDuration(Math.max(0, u.retryAt - now))}`
  return `  (${u.reason ?? 'relayed'}${next})`
}

/** DHT health (mode, routing table, last publish), mDNS and the lookup cache. */
export function formatDiscovery(d: DiscoveryStatus, now = Date.now()): string[] {
  const ago = (t: number | undefined): string => (t === undefined ? 'never' : `${formatDuration(now - t)} ago`)
  const lines = ['discovery']
  if (d.dht.enabled) {
    const p = d.dht.publish
    const last =
      p.lastSuccessAt === undefined
        ? `not yet${p.lastError === undefined ? '' : ` (${p.lastError})`}`
        : `${ago(p.lastSuccessAt)} on ${p.servers} server(s), ${p.addrs.length} address(es)` +
          (p.lastError === undefined ? '' : `; latest attempt failed: ${p.lastError}`)
    lines.push(
      `  dht    ${d.dht.mode} mode, ${d.dht.routingTable} server(s) in the routing table, last publish ${last}`,
    )
  } else lines.push('  dht    off')
  lines.push(`  mdns   ${d.mdns.enabled ? `on, ${d.mdns.peers} node(s) on the LAN` : 'off'}`)
  lines.push(`  cache  ${d.cache.entries} node(s), TTL ${formatDuration(d.cache.ttlMs)}`)
  return lines
}

function formatError(e: ForwardError, now: number): string {
  return `${formatDuration(Math.max(0, now - e.at))} ago: ${e.message} (${e.code})`
}

/**
 * A forward's lines: `<listen>  → <node>/<service>  <n> open, <n> served, <n> failed`, then indented under it the
 * latest failed connection and a failed check. `indent` goes in front of every line.
 */
export function formatForwards(list: ForwardInfo[], indent = '', now = Date.now()): string[] {
  const width = Math.max(0, ...list.map((f) => f.listen.length))
  const lines: string[] = []
  for (const f of list) {
    const check = f.check.state === 'skipped' ? ', not checked' : f.check.state === 'running' ? ', checking' : ''
    lines.push(
      `${indent}${f.listen.padEnd(width)}  → ${f.node}/${f.service}  ${f.active} open, ${f.total} served, ${f.failed} failed${check}`,
    )
    const more = `${indent}${' '.repeat(width + 2)}  `
    if (f.lastError !== undefined) lines.push(`${more}last error ${formatError(f.lastError, now)}`)
    if (f.check.state === 'failed' && f.check.error !== undefined) {
      lines.push(`${more}check failed ${formatError(f.check.error, now)}`)
    }
  }
  return lines
}

/** Local connections against the open-file limit, and those refused at it (absent from an older daemon's status). */
function openFilesRow(st: NodeStatus): [string, string][] {
  const f = st.openFiles as NodeStatus['openFiles'] | undefined
  if (f === undefined) return []
  const refused = f.refused > 0 ? `, ${f.refused} refused at the limit (ERR_FILE_LIMIT)` : ''
  return [
    ['open files', `${f.localConnections} local connections, limit ${f.limit ?? 'unknown'} (ulimit -n)${refused}`],
  ]
}

export function formatStatus(st: NodeStatus, now = Date.now()): string {
  const lines: string[] = [
    table([
      ['node id', st.id],
      ['base36', st.idBase36],
      ['version', st.version],
      ['uptime', formatDuration(st.uptimeMs)],
      [
        'streams',
        `${st.streams.active} open, ${st.streams.total} since start (in: ${st.streams.incoming.active} open, ${st.streams.incoming.total} since start; out: ${st.streams.outgoing.active} open, ${st.streams.outgoing.total} since start)`,
      ],
      ...openFilesRow(st),
      ['ticket', st.ticket],
      ...(st.access ? [['access port', `${st.access.listen} (SOCKS5, HTTP proxy, gateway)`] as [string, string]] : []),
      ...dashboardRow(st),
      ...(st.dns ? [['dns', `${st.dns.listen} (.warren names)`] as [string, string]] : []),
    ]),
    `addresses (${st.addrs.length})`,
    ...st.addrs.map((a) => `  ${a}`),
    `services (${st.services.length})`,
  ]
  if (st.services.length > 0) {
    lines.push(
      table(
        st.services.map((s) => [
          s.name,
          `${s.target}  allow: ${describeAllow(s)}${s.kubo ? '  +kubo /x/' + s.name : ''}  (${s.source})`,
        ]),
        '  ',
      ),
    )
  }
  if (st.relay !== undefined) {
    const r = st.relay
    const limits =
      r.limits === undefined
        ? ''
        : r.limits === null
          ? ', unlimited'
          : `, limited to ${r.limits.dataBytes} bytes / ${r.limits.durationSec} s per connection`
    lines.push(`relays (${r.relays.length}), home: ${r.home === null ? 'none yet' : `${r.home}${limits}`}`)
    lines.push(
      table(
        r.relays.map((e) => [e.addr, describeRelayEntry(e, now)]),
        '  ',
      ),
    )
  }
  if (st.discovery !== undefined) lines.push(...formatDiscovery(st.discovery, now))
  if (st.portMapping !== undefined) lines.push(...formatPortMapping(st.portMapping, now))
  if (st.webrtc !== undefined) {
    const w = st.webrtc
    const stun = w.iceServers.length === 0 ? 'no STUN server yet' : `STUN ${w.iceServers.join(', ')}`
    lines.push(`webrtc for browsers: ${w.enabled ? `on, ${stun}` : `off (${w.reason ?? 'unknown'})`}`)
  }
  lines.push(`forwards (${st.forwards.length})`, ...formatForwards(st.forwards, '  ', now))
  lines.push(...formatTraffic(st.traffic))
  lines.push(`peers (${st.peers.length})`)
  if (st.peers.length > 0) {
    lines.push(
      table(
        st.peers.map((p) => [
          p.aliases.length > 0 ? `${p.aliases.join(', ')}` : p.id,
          `${p.aliases.length > 0 ? `${p.id}  ` : ''}${p.connected ? formatPath(p.path) + formatUpgrade(p.upgrade) + describeUntested(p.upgrade) : 'not connected'}`,
        ]),
        '  ',
      ),
    )
  }
  return lines.join('\n')
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show the running daemon: addresses, services, forwards, peers and the path to each')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const st = await withClient(cmd, (c) => c.status())
      if (opts.json === true) sayJson(st)
      else say(formatStatus(st))
    })
}
