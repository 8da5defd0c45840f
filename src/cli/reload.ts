/**
 * `warren reload`: the running daemon reads config.json again and applies peers, services, allow lists and limits
 * without dropping the streams the new rules still admit (the same as `kill -HUP <pid>`). An invalid config is
 * refused with the same field-path errors as at start, and the running one stays.
 */
import type { Command } from 'commander'
import type { ReloadResult } from '../node/reload.ts'
import { say, sayJson, withClient } from './common.ts'

/** What a reload did, one line per kind of change. */
export function formatReload(r: ReloadResult): string {
  const lines: string[] = []
  for (const [what, names] of Object.entries(r.services)) {
    if (names.length > 0) lines.push(`services ${what}: ${names.join(', ')}`)
  }
  if (r.peers) lines.push('peers: changed')
  if (r.limits.length > 0) lines.push(`limits: ${r.limits.join(', ')}`)
  if (r.portMapping) lines.push('port mapping: settings applied (see warren status)')
  if (lines.length === 0) lines.push('nothing to apply changed')
  if (r.needsRestart.length > 0) {
    lines.push(`changed, taking effect at the next start (warren down, warren up): ${r.needsRestart.join(', ')}`)
  }
  return lines.join('\n')
}

export function register(program: Command): void {
  program
    .command('reload')
    .description('make the running daemon read config.json again (peers, services, allow lists, limits)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nStreams the new rules still admit keep running; streams of removed services or of nodes no longer allowed\n' +
        'are reset. An invalid config.json is refused with the field paths, and the running config stays.\n' +
        'SIGHUP to the daemon does the same (its log says what changed). listen, proxy, relays and the other keys\n' +
        'are read only at start: a reload lists the ones that changed.',
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const r = await withClient(cmd, (c) => c.call('daemon.reload'))
      if (opts.json === true) sayJson(r)
      else say(`reloaded config.json\n${formatReload(r)}`)
    })
}
