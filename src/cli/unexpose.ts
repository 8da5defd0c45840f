/** `warren unexpose <name>`: stops offering a service. */
import type { Command } from 'commander'
import { say, sayJson, withClient } from './common.ts'

export function register(program: Command): void {
  program
    .command('unexpose')
    .description('stop offering a service (new connections to it are refused)')
    .argument('<name>', 'service name')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const res = await withClient(cmd, (c) => c.unexpose(name))
      if (opts.json === true) return sayJson(res)
      say(`unexposed ${res.name}`)
      if (res.source === 'config') {
        say(
          `note: ${res.name} is defined in config.json; it comes back when the daemon restarts unless you remove it there`,
        )
      }
    })
}
