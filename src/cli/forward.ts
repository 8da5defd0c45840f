/**
 * `warren forward <node>/<service> --listen <host:port>`: a local TCP port that leads to a remote service.
 * `--list` shows the forwards, `--remove <host:port>` closes one. Forwards live in the daemon and come back
 * after it restarts.
 */
import type { Command } from 'commander'
import { WarrenError } from '../errors.ts'
import type { ForwardInfo } from '../node/types.ts'
import { collect, parseServiceRef, say, sayJson, table, withClient } from './common.ts'

function formatForwards(list: ForwardInfo[]): string {
  if (list.length === 0) return 'no forwards (add one with `warren forward <node>/<service> --listen 127.0.0.1:<port>`)'
  return table(list.map((f) => [f.listen, `→ ${f.node}/${f.service}  ${f.active} open, ${f.total} served`]))
}

export function register(program: Command): void {
  program
    .command('forward')
    .description('listen on a local TCP port and carry its connections to <node>/<service>')
    .argument('[node/service]', 'remote service: <alias|node id|ticket>/<service>, e.g. laptop/db')
    .option('--listen <host:port>', 'local address to listen on; port 0 picks a free port', '127.0.0.1:0')
    .option('--addr <multiaddr>', 'an address of the node, repeatable (when config `peers` has none)', collect)
    .option('--list', 'list the forwards instead')
    .option('--remove <host:port>', 'remove the forward listening on this address instead')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  warren forward laptop/db --listen 127.0.0.1:5432   then: psql -h 127.0.0.1\n' +
        '  warren forward --list\n' +
        '  warren forward --remove 127.0.0.1:5432\n' +
        'The forward runs inside the daemon (this command returns at once) and survives daemon restarts.\n' +
        'The first line printed is the address it listens on.',
    )
    .action(
      async (
        ref: string | undefined,
        opts: { listen: string; addr?: string[]; list?: boolean; remove?: string; json?: boolean },
        cmd: Command,
      ) => {
        const json = opts.json === true
        if (opts.list === true) {
          const list = await withClient(cmd, (c) => c.forwards())
          return json ? sayJson(list) : say(formatForwards(list))
        }
        if (opts.remove !== undefined) {
          const res = await withClient(cmd, (c) => c.forwardRemove(opts.remove!))
          return json ? sayJson(res) : say(`removed the forward on ${res.listen}`)
        }
        if (ref === undefined) {
          throw new WarrenError('ERR_USAGE', 'forward needs <node>/<service> (or --list, or --remove <host:port>)', {
            hint: 'For example: `warren forward laptop/db --listen 127.0.0.1:5432`.',
          })
        }
        const { node, service } = parseServiceRef(ref)
        const info = await withClient(cmd, (c) =>
          c.forwardAdd({ node, service, listen: opts.listen, ...(opts.addr ? { addrs: opts.addr } : {}) }),
        )
        if (json) return sayJson(info)
        say(info.listen)
        process.stderr.write(
          `forwarding ${info.listen} → ${node}/${service} (remove with \`warren forward --remove ${info.listen}\`)\n`,
        )
      },
    )
}
