/** `warren expose <name> <target>`: offers a local TCP service to other nodes, at runtime (kept across restarts). */
import type { Command } from 'commander'
import { collect, say, sayJson, withClient } from './common.ts'
import { describeAllow } from './status.ts'

export function register(program: Command): void {
  program
    .command('expose')
    .description('offer a TCP service to other nodes (kept across daemon restarts)')
    .argument('<name>', 'service name: lowercase letters, digits, inner hyphens (e.g. web)')
    .argument(
      '<target>',
      'TCP target multiaddr: /tcp/8080 (this machine), /ip4/10.0.0.4/tcp/5432, /dns4/db.lan/tcp/5432',
    )
    .option('--allow <peer>', 'node id or peers alias that may use it, repeatable; "*" for everyone', collect)
    .option('--kubo', "also serve raw /x/<name> streams (Kubo's `ipfs p2p forward`)")
    .option('--replace', 'replace a service of the same name')
    .option('--json', 'print the service as JSON')
    .addHelpText('after', '\nWithout --allow, every node named in config `peers` may use the service; nobody else can.')
    .action(
      async (
        name: string,
        target: string,
        opts: { allow?: string[]; kubo?: boolean; replace?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const info = await withClient(cmd, (c) =>
          c.expose(name, target, {
            ...(opts.allow ? { allow: opts.allow } : {}),
            ...(opts.kubo ? { kubo: true } : {}),
            ...(opts.replace ? { replace: true } : {}),
          }),
        )
        if (opts.json === true) return sayJson(info)
        say(`exposed ${info.name} → ${info.target} (allowed: ${describeAllow(info)})`)
      },
    )
}
