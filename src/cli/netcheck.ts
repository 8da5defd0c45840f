/**
 * `warren netcheck`: how this node's network looks from outside — UDP reachability, the public address each relay's
 * STUN responder sees, whether the NAT maps each destination to a new port (symmetric: direct paths then need
 * birthday probing and may stay relayed), each relay's round trip, and the home relay; then transparent mode
 * (netcheck-transparent.ts). `warren doctor` is the same command.
 */
import type { Command } from 'commander'
import type { NetcheckResult } from '../node/types.ts'
import { homeOf, say, sayJson, table, withClient } from './common.ts'
import { checkTransparent, formatTransparent, transparentOnly } from './netcheck-transparent.ts'
import { formatPortMapping } from './status-portmap.ts'

const ep = (e: { host: string; port: number }): string =>
  e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`

function tcpLine(t: NetcheckResult['tcp']): string {
  if (t === undefined) return '-'
  if ('error' in t) return `no STUN answer over TCP (${t.error}): direct paths use UDP`
  if (t.nat === undefined) return `${ep(t.mapped)} (one relay: cannot tell whether it varies)`
  return t.nat === 'easy'
    ? `${ep(t.mapped)}, same from every relay (TCP direct paths by simultaneous open)`
    : `${ep(t.mapped)}, varies by destination (TCP direct paths only by birthday probing with easy peers)`
}

export function formatNetcheck(r: NetcheckResult): string {
  const nat =
    r.noNat === true
      ? 'none (the relays see this host’s own address)'
      : r.nat === undefined
        ? 'unknown (needs answers from two relays)'
        : r.nat === 'easy'
          ? 'endpoint-independent mapping (direct paths work with most peers)'
          : 'maps each destination to a new port (symmetric: direct only with easy peers, else relayed)'
  const lines = [
    table([
      ['udp', r.udp ? 'yes' : 'no (no STUN answer over UDP: direct paths will not work, relays will)'],
      ['public', r.publicAddresses.length === 0 ? '-' : r.publicAddresses.map(ep).join(', ')],
      [
        'mapping varies',
        r.mappingVariesByDestination === undefined ? '-' : r.mappingVariesByDestination ? 'yes' : 'no',
      ],
      ['nat', nat],
      ['tcp', tcpLine(r.tcp)],
      ['home relay', r.home ?? 'none'],
    ]),
    `stun (${r.servers.length})`,
    ...r.servers.map(
      (s) =>
        `  ${ep(s.server)}  ${s.mapped === undefined ? `no answer: ${s.error ?? 'unknown'}` : `sees ${ep(s.mapped)} in ${s.rttMs?.toFixed(1)} ms`}`,
    ),
    `relays (${r.relays.length})`,
    ...r.relays.map((e) => `  ${e.addr}  ${e.state}${e.rttMs === undefined ? '' : `  rtt ${e.rttMs.toFixed(1)} ms`}`),
    ...formatPortMapping(r.portMapping),
  ]
  return lines.join('\n')
}

export function register(program: Command): void {
  program
    .command('netcheck')
    .description(
      "check UDP and TCP reachability and NAT behaviour through the relays' STUN responders, and transparent mode (capture, names)",
    )
    .alias('doctor')
    .option('--json', 'print as JSON')
    .option('--transparent', 'check transparent mode only: capture and names (works without a running daemon)')
    .action(async (opts: { json?: boolean; transparent?: boolean }, cmd: Command) => {
      if (await transparentOnly(opts, cmd)) return
      const r = await withClient(cmd, (c) => c.netcheck())
      const t = await checkTransparent(homeOf(cmd))
      if (opts.json === true) sayJson({ ...r, transparent: t })
      else say(`${formatNetcheck(r)}\n${formatTransparent(t)}`)
    })
}
