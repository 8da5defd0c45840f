/** `warren up`: the daemon in the foreground, logging to stderr, until SIGINT/SIGTERM or `warren down`. */
import type { Command } from 'commander'
import { createLogger, logLevelFromEnv } from '../log.ts'
import { collect, homeOf } from './common.ts'
import { runInForeground } from './foreground.ts'

export function register(program: Command): void {
  program
    .command('up')
    .description('run the daemon in the foreground (serves the services in config.json and the local API)')
    .option('--listen <multiaddr>', 'listen on this address instead of config `listen`, repeatable', collect)
    .addHelpText(
      'after',
      '\nLogs go to stderr (WARREN_LOG=debug|info|warn|error). Ctrl-C, SIGTERM or `warren down` stop it cleanly:\n' +
        'listeners closed, streams ended, the API socket and pid file removed. Only one daemon runs per home.',
    )
    .action(async (opts: { listen?: string[] }, cmd: Command) => {
      const log = createLogger({ min: logLevelFromEnv() })
      const { runDaemon } = await import('../daemon/daemon.ts') // libp2p loads only for `up`
      const daemon = await runDaemon({ home: homeOf(cmd), log, ...(opts.listen ? { listen: opts.listen } : {}) })
      await runInForeground(daemon, (signal) =>
        log('warn', `${signal} again: exiting without finishing the clean stop`),
      )
    })
}
