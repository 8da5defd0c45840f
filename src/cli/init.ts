/** `warren init`: a new Ed25519 key (mode 0600) and a default config.json in the home. */
import type { Command } from 'commander'
import { collect, homeOf, say, sayJson, table } from './common.ts'

export function register(program: Command): void {
  program
    .command('init')
    .description('create a node key and a default config.json in the Warren home')
    .option('--force', 'replace an existing key and config (the node id changes)')
    .option('--listen <multiaddr>', 'address to listen on, repeatable (default /ip4/0.0.0.0/tcp/4781)', collect)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nThe home is --home, else $WARREN_HOME, else ~/.warren. The key file gets mode 0600.\n' +
        'Without --force, init never overwrites an existing key or config.',
    )
    .action(async (opts: { force?: boolean; listen?: string[]; json?: boolean }, cmd: Command) => {
      const { initHome } = await import('./home-setup.ts')
      const out = await initHome(homeOf(cmd), {
        ...(opts.force ? { force: true } : {}),
        ...(opts.listen ? { listen: opts.listen } : {}),
      })
      if (opts.json === true) return sayJson(out)
      say(`created a Warren home in ${out.home}`)
      say(
        table([
          ['node id', out.id],
          ['base36', out.idBase36],
          ['key', `${out.key} (mode 0600)`],
          ['config', out.config],
        ]),
      )
      say('next: start the daemon with `warren up`')
    })
}
