/**
 * The `warren` command line: argv → commander → one command module → the local API client → output.
 *
 * `main(args)` runs one command and resolves to its exit status; it never calls `process.exit` itself.
 * Executed directly (`node src/cli/main.ts …`) it runs `process.argv` and exits with that status; `bin/warren.js`
 * calls {@link run} on the compiled file.
 *
 * Errors print as `warren: <message>` and `hint: <hint>` on stderr (with `--json`: `{"error": {...}}` on
 * stderr) and the exit status is the error code's (see src/errors.ts).
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError } from 'commander'
import { toWarrenError, WarrenError } from '../errors.ts'
import { VERSION } from '../version.ts'
import { register as allow } from './allow.ts'
import { register as call } from './call.ts'
import { printError } from './common.ts'
import { register as connect } from './connect.ts'
import { register as down } from './down.ts'
import { flushThenExit } from './exit.ts'
import { register as expose } from './expose.ts'
import { register as forward } from './forward.ts'
import { register as id } from './id.ts'
import { register as init } from './init.ts'
import { register as invite } from './invite.ts'
import { register as logs } from './logs.ts'
import { register as lookup } from './lookup.ts'
import { register as ls } from './ls.ts'
import { register as netcheck } from './netcheck.ts'
import { register as ping } from './ping.ts'
import { register as relay } from './relay.ts'
import { register as reload } from './reload.ts'
import { register as service } from './service.ts'
import { register as status } from './status.ts'
import { register as unexpose } from './unexpose.ts'
import { register as up } from './up.ts'

/** The whole command tree; errors surface as thrown CommanderErrors or WarrenErrors. */
export function buildProgram(): Command {
  const program = new Command('warren')
  program
    .description('Warren: reach TCP services on your machines by node id, peer to peer, end-to-end encrypted.')
    .version(VERSION, '-V, --version', 'print the Warren version')
    .option('--home <dir>', 'Warren home (default: $WARREN_HOME, else ~/.warren)')
    .helpOption('-h, --help', 'show help for a command')
    .exitOverride()
    .configureOutput({ outputError: () => {} }) // main() prints usage errors the Warren way
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      '\nStart here: `warren init`, then `warren up`. `warren <command> --help` explains each command.\n' +
        'Errors: `warren: <what went wrong>` and `hint: <what to do>` on stderr; the exit status says which kind.',
    )
  for (const register of [
    init,
    id,
    up,
    down,
    reload,
    logs,
    service,
    status,
    expose,
    unexpose,
    allow,
    invite,
    forward,
    connect,
    ls,
    call,
    ping,
    lookup,
    netcheck,
    relay,
  ])
    register(program)
  return program
}

function usageError(err: CommanderError, args: string[], program: Command): WarrenError {
  const names = new Set(program.commands.map((c) => c.name()))
  const command = args.find((a) => names.has(a))
  const [first, ...more] = err.message.replace(/^error: /, '').split('\n')
  const suggestion = more
    .join(' ')
    .replace(/^\((.*)\)$/, '$1')
    .trim()
  return new WarrenError('ERR_USAGE', first ?? 'bad command line', {
    hint: `${suggestion === '' ? '' : `${suggestion} `}See \`warren ${command === undefined ? '' : `${command} `}--help\`.`,
  })
}

/** Runs one command line (without the `node` and script entries) and resolves to the exit status. */
export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const program = buildProgram()
  const json = args.includes('--json')
  try {
    if (args.length === 0) {
      program.outputHelp()
      return ERROR_EXIT_USAGE
    }
    await program.parseAsync(args, { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0
      if (err.code === 'commander.help') return ERROR_EXIT_USAGE
      const e = usageError(err, args, program)
      printError(e, json)
      return e.exitCode
    }
    const e = toWarrenError(err)
    printError(e, json)
    if (e.code === 'ERR_INTERNAL' && err instanceof Error && process.env.WARREN_DEBUG) console.error(err.stack)
    return e.exitCode
  }
}

/** For bin/warren.js, which exits the same way. */
export { flushThenExit }

const ERROR_EXIT_USAGE = new WarrenError('ERR_USAGE', '').exitCode

/** Runs `main` on `process.argv` and exits with its status. */
export async function run(): Promise<never> {
  const code = await main()
  return await flushThenExit(code)
}

function executedDirectly(): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (executedDirectly()) void run()
