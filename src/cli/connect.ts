/** `warren connect <node>/<service>`: the service on stdin/stdout, for OpenSSH's ProxyCommand and pipes. */
import type { Command } from 'commander'
import { connectStdio } from '../client/connect-stdio.ts'
import { collect, parseServiceRef, withClient } from './common.ts'

export function register(program: Command): void {
  program
    .command('connect')
    .description('connect stdin/stdout to <node>/<service> (binary-safe; works as an ssh ProxyCommand)')
    .argument('<node/service>', 'remote service: <alias|node id|ticket>/<service>, e.g. laptop/ssh')
    .option('--addr <multiaddr>', 'an address of the node, repeatable (when config `peers` has none)', collect)
    .addHelpText(
      'after',
      "\nExample: ssh -o ProxyCommand='warren connect laptop/ssh' me@laptop\n" +
        'EOF on stdin half-closes the connection (the service can still answer); the command exits when the\n' +
        'service closes its side. Needs the daemon running (`warren up`).\n' +
        '\nExit status: 0 once the service ended its side and stdout has every byte; 5 with a message when the\n' +
        'stream was cut before its end (reset by the service or a daemon, connection lost, stdout not writable)\n' +
        'or the service could not be reached; 2, 4, 7 for usage, name and daemon errors (docs/errors.md).',
    )
    .action(async (ref: string, opts: { addr?: string[] }, cmd: Command) => {
      const { node, service } = parseServiceRef(ref)
      try {
        await withClient(cmd, (c) => connectStdio(c, node, service, opts.addr ? { addrs: opts.addr } : {}))
      } finally {
        process.stdin.destroy() // the remote is done: stop reading stdin so the process can exit
      }
    })
}
