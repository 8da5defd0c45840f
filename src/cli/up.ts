/**
 * `warren up`: the daemon in the foreground, logging to stderr and to `<home>/daemon.log`, until SIGINT/SIGTERM or
 * `warren down`; with `--detach`, in the background (src/cli/detach.ts).
 */
import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import { TRANSPARENT_ENV } from '../access/transparent/settings.ts'
import { batchLines } from '../daemon/log-batch.ts'
import { logFilePath, openLogFile } from '../daemon/log-file.ts'
import { WarrenError } from '../errors.ts'
import { createLogger, type LogFormat, logFormatFromEnv, logLevelFromEnv } from '../log.ts'
import { collect, homeOf, say } from './common.ts'
import { DETACHED_ENV, detach } from './detach.ts'
import { runInForeground } from './foreground.ts'
import { checkListenMultiaddrs } from './listen-multiaddr.ts'

/** `--log-format`, else WARREN_LOG_FORMAT, else pretty; ERR_USAGE for another value. */
function logFormatOf(flag: string | undefined): LogFormat {
  if (flag === undefined) return logFormatFromEnv()
  if (flag === 'json' || flag === 'pretty') return flag
  throw new WarrenError('ERR_USAGE', `--log-format ${JSON.stringify(flag)} is not a log format`, {
    hint: 'Use --log-format pretty (readable lines) or --log-format json (one JSON object per line).',
  })
}

export function register(program: Command): void {
  program
    .command('up')
    .description('run the daemon in the foreground (serves the services in config.json and the local API)')
    .option('--listen <multiaddr>', 'listen on this address instead of config `listen`, repeatable', collect)
    .option(
      '--metrics <host:port>',
      'serve the dashboard (/) and Prometheus metrics (/metrics) here, e.g. 127.0.0.1:4779 (config metrics.listen)',
    )
    .option('--log-format <format>', 'pretty (readable lines, the default) or json (one object per line)')
    .option('--detach', 'run in the background: return once the daemon answers, logging to <home>/daemon.log')
    .option(
      '--transparent',
      'capture TCP to service addresses on any port (Linux, needs CAP_NET_ADMIN; like "transparent": {"enabled": true})',
    )
    .addHelpText(
      'after',
      '\nLogs go to stderr and to <home>/daemon.log (WARREN_LOG=debug|info|warn|error,\n' +
        'WARREN_LOG_FORMAT or --log-format json for one JSON object per line; `warren logs -f` follows the file).\n' +
        'Ctrl-C, SIGTERM or `warren down` stop it cleanly: listeners closed, streams ended, the API socket and pid\n' +
        'file removed. SIGHUP or `warren reload` reads config.json again. Only one daemon runs per home.\n' +
        'With --transparent, `curl http://web.laptop.warren/`, ssh and psql reach services by name with no proxy\n' +
        'setting; what it changes on the system and how it is undone: docs/transparent.md.',
    )
    .action(
      async (
        opts: { listen?: string[]; transparent?: boolean; metrics?: string; detach?: boolean; logFormat?: string },
        cmd: Command,
      ) => {
        const home = homeOf(cmd)
        const listen = opts.listen ? checkListenMultiaddrs(opts.listen) : undefined
        const format = logFormatOf(opts.logFormat)
        if (opts.detach === true) {
          const args = [
            ...(listen ?? []).flatMap((l) => ['--listen', l]),
            ...(opts.metrics === undefined ? [] : ['--metrics', opts.metrics]),
            ...(opts.transparent === true ? ['--transparent'] : []),
            '--log-format',
            format,
          ]
          const d = await detach(home, args)
          say(`started the daemon in the background (pid ${d.pid}), node ${d.id}`)
          say(`logs: ${d.log} (\`warren logs -f\`); stop it with \`warren down\``)
          return
        }
        // a home that does not exist yet gets no log file: the daemon refuses to start on it anyway
        const file = existsSync(home.dir) ? openLogFile(logFilePath(home.dir)) : undefined
        const toStderr = process.env[DETACHED_ENV] !== '1'
        // lines leave in batches of up to 10 ms, every one kept (src/daemon/log-batch.ts)
        const out = batchLines((text) => {
          if (toStderr) process.stderr.write(text)
          file?.write(text)
        })
        const log = createLogger({ min: logLevelFromEnv(), format, out })
        if (opts.transparent === true) process.env[TRANSPARENT_ENV] = '1'
        const { runDaemon } = await import('../daemon/daemon.ts') // libp2p loads only for `up`
        const daemon = await runDaemon({
          home,
          log,
          ...(listen ? { listen } : {}),
          ...(opts.metrics === undefined ? {} : { metricsListen: opts.metrics }),
        })
        await runInForeground(daemon, (signal) =>
          log('warn', `${signal} again: exiting without finishing the clean stop`),
        )
        out.flush()
        file?.close()
      },
    )
}
