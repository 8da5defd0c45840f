/**
 * `warren forward <node>/<service> --listen <host:port>`: a local TCP port that leads to a remote service.
 * The service is checked first (one stream opened and closed): a refusal fails the command and adds nothing; a node
 * that cannot be reached now only gets a warning. `--list` shows the forwards with their connection counts and
 * latest error, `--remove <host:port>` closes one. Forwards live in the daemon and come back after it restarts.
 */
import type { Command } from 'commander'
import { isPublicListen } from '../config/listen-address.ts'
import { WarrenError } from '../errors.ts'
import { collect, parseServiceRef, say, sayJson, withClient } from './common.ts'
import { formatForwards } from './status.ts'

export function register(program: Command): void {
  program
    .command('forward')
    .description('listen on a local TCP port and carry its connections to <node>/<service>')
    .argument('[node/service]', 'remote service: <alias|node id|ticket>/<service>, e.g. laptop/db')
    .option('--listen <host:port>', 'local address to listen on; port 0 picks a free port', '127.0.0.1:0')
    .option('--addr <multiaddr>', 'an address of the node, repeatable (when config `peers` has none)', collect)
    .option('--public', 'allow a --listen address other machines can reach (anything but loopback)')
    .option('--no-check', 'add the forward without checking the service first')
    .option('--list', 'list the forwards instead')
    .option('--remove <host:port>', 'remove the forward listening on this address instead')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  warren forward laptop/db --listen 127.0.0.1:5432   then: psql -h 127.0.0.1\n' +
        '  warren forward --list\n' +
        '  warren forward --remove 127.0.0.1:5432\n' +
        'The forward runs inside the daemon and survives daemon restarts.\n' +
        'The first line printed is the address it listens on.\n' +
        'Before adding it, the daemon opens one stream to the service and closes it again (the target sees one\n' +
        'empty connection; the check gives up after 2 x limits.dialTimeoutMs + limits.connectTimeoutMs). If the\n' +
        'node refuses (no such service, this node not allowed), nothing is added and the command fails with exit\n' +
        'status 5. If the node cannot be reached right now, or its target is down, the forward is added anyway and\n' +
        'a warning says why; each new connection tries again. --no-check adds it without the check.\n' +
        '--list shows, for each forward, its open, served and failed connections and the latest failure.\n' +
        'A --listen address that is not loopback (0.0.0.0, a LAN address) is refused unless --public is given:\n' +
        'every machine that reaches the port uses the service as this node.',
    )
    .action(
      async (
        ref: string | undefined,
        opts: {
          listen: string
          addr?: string[]
          check: boolean
          public?: boolean
          list?: boolean
          remove?: string
          json?: boolean
        },
        cmd: Command,
      ) => {
        const json = opts.json === true
        if (opts.list === true) {
          const list = await withClient(cmd, (c) => c.forwards())
          if (json) return sayJson(list)
          if (list.length === 0) {
            return say('no forwards (add one with `warren forward <node>/<service> --listen 127.0.0.1:<port>`)')
          }
          return say(formatForwards(list).join('\n'))
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
          c.forwardAdd({
            node,
            service,
            listen: opts.listen,
            ...(opts.addr ? { addrs: opts.addr } : {}),
            ...(opts.check ? {} : { check: false }),
            ...(opts.public === true ? { public: true } : {}),
          }),
        )
        if (isPublicListen(info.listen)) {
          process.stderr.write(
            `warren: warning: ${info.listen} is not a loopback address: anyone who can reach it uses ${node}/${service} as this node\n`,
          )
        }
        if (json) return sayJson(info)
        say(info.listen)
        process.stderr.write(
          `forwarding ${info.listen} → ${node}/${service} (remove with \`warren forward --remove ${info.listen}\`)\n`,
        )
        const failed = info.check.error
        if (info.check.state === 'failed' && failed !== undefined) {
          process.stderr.write(
            `warren: warning: could not check ${node}/${service}, the forward is kept and each connection tries again: ${failed.message} (${failed.code})\n`,
          )
        }
      },
    )
}
