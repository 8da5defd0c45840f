/**
 * `warren lookup <node>`: the addresses discovery finds for a node, each with its source (cache, config, mdns, dht)
 * and age, and what every source answered. By default every source is asked; `--first` stops at the first that knows
 * the node (what a connection would use), `--fresh` skips the cache and config.
 */
import type { Command } from 'commander'
import type { LookupResult } from '../discovery/resolver.ts'
import { say, sayJson, table, withClient } from './common.ts'
import { formatDuration } from './status.ts'

export function formatLookup(r: LookupResult): string {
  const lines = [`${r.id}: ${r.addrs.length} address(es) in ${r.elapsedMs} ms`]
  if (r.addrs.length > 0) {
    lines.push(
      table(
        r.addrs.map((a) => [
          a.addr,
          `${a.source}${a.origin === undefined ? '' : ` (from ${a.origin})`}  ${a.ageMs === undefined ? '' : `${formatDuration(a.ageMs)} old`}`,
        ]),
        '  ',
      ),
    )
  }
  lines.push('sources')
  lines.push(
    table(
      r.tried.map((t) => [t.source, t.note]),
      '  ',
    ),
  )
  return lines.join('\n')
}

export function register(program: Command): void {
  program
    .command('lookup')
    .description('find the addresses of a node by its id: from the cache, peers/tickets, mDNS and the DHT')
    .argument('<node>', 'node id (either form), alias or ticket')
    .option('--first', 'stop at the first source that knows the node (what a connection uses)')
    .option('--fresh', 'skip the cache and config, ask mDNS and the DHT')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nAges: for dht, since the node published its record; for mdns, since it last answered; for cache, since the\n' +
        'lookup that cached it. Fails with ERR_LOOKUP_FAILED (exit 4) when no source knows the node.',
    )
    .action(async (node: string, opts: { first?: boolean; fresh?: boolean; json?: boolean }, cmd: Command) => {
      const r = await withClient(cmd, (c) => c.lookup(node, { all: opts.first !== true, fresh: opts.fresh === true }))
      if (opts.json === true) sayJson(r)
      else say(formatLookup(r))
    })
}
