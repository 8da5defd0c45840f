/** `warren down`: asks the running daemon to stop and waits until it has. */
import { access } from 'node:fs/promises'
import type { Command } from 'commander'
import { processAlive } from '../daemon/pidfile.ts'
import { WarrenError } from '../errors.ts'
import { homeOf, say, sayJson, withClient } from './common.ts'

const WAIT_MS = 15_000

export function register(program: Command): void {
  program
    .command('down')
    .description('stop the daemon of this home (the same clean stop as Ctrl-C)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const home = homeOf(cmd)
      const { pid } = await withClient(cmd, (client) => client.stopDaemon())
      const deadline = Date.now() + WAIT_MS
      const pidFileGone = (): Promise<boolean> =>
        access(home.pid).then(
          () => false,
          () => true,
        )
      const gone = async (): Promise<boolean> => (pid === process.pid || !processAlive(pid)) && (await pidFileGone())
      let stopped = await gone()
      while (!stopped && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
        stopped = await gone()
      }
      if (!stopped) {
        throw new WarrenError('ERR_TIMEOUT', `the daemon (pid ${pid}) did not stop within ${WAIT_MS / 1000} s`, {
          hint: `Look at its log; \`kill ${pid}\` asks again, \`kill -9 ${pid}\` forces it.`,
        })
      }
      if (opts.json === true) return sayJson({ stopped: true, pid })
      say(`stopped the daemon (pid ${pid})`)
    })
}
