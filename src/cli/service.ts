/**
 * `warren service install [--print] [--name <unit>] [--force]`: a systemd user unit that runs `warren up` for this
 * home, so the node starts at login (or at boot with lingering) and restarts after a failure. `--print` prints the
 * unit and writes nothing. The unit runs the command that wrote it (the same Node and the same `warren`), reloads
 * with SIGHUP (`systemctl --user reload`), and logs to the journal as well as to `<home>/daemon.log`.
 */
import { existsSync, realpathSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Command } from 'commander'
import type { HomePaths } from '../config/home.ts'
import { WarrenError } from '../errors.ts'
import { homeOf, say } from './common.ts'

/** A systemd unit name: letters, digits and `-_.@`, without the `.service` suffix. */
const UNIT_NAME = /^[A-Za-z0-9_.@-]{1,200}$/

/** Quotes one word for an ExecStart= or Environment= line (systemd's double-quote rules). */
function quote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** The unit file text for `home`, running `node script up`. */
export function unitText(home: HomePaths, node: string, script: string): string {
  return `[Unit]
Description=Warren node (${home.dir})
Documentation=${pathToFileURL(join(packageRoot(script) ?? dirname(script), 'docs', 'observability.md')).href}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
Environment=${quote(`WARREN_HOME=${home.dir}`)}
ExecStart=${quote(node)} ${quote(script)} up
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# the daemon stops cleanly on SIGTERM: listeners closed, streams ended
TimeoutStopSec=30

[Install]
WantedBy=default.target
`
}

/** `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`. */
export function userUnitDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config')
  return join(base, 'systemd', 'user')
}

/** The package root above `script`: the nearest directory with a package.json. */
function packageRoot(script: string): string | undefined {
  for (let dir = dirname(script); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
  }
  return undefined
}

/** The `warren` command this process runs as: bin/warren.js of its package, else the script itself. */
function commandScript(): string {
  const script = realpathSync(process.argv[1]!)
  const root = packageRoot(script)
  const bin = root === undefined ? undefined : join(root, 'bin', 'warren.js')
  return bin !== undefined && existsSync(bin) ? bin : script
}

async function install(home: HomePaths, opts: { print?: boolean; name: string; force?: boolean }): Promise<void> {
  if (!UNIT_NAME.test(opts.name)) {
    throw new WarrenError('ERR_USAGE', `--name ${JSON.stringify(opts.name)} is not a systemd unit name`, {
      hint: 'Use letters, digits, "-", "_", "." or "@", e.g. --name warren-laptop.',
    })
  }
  if (!existsSync(home.key)) {
    throw new WarrenError('ERR_HOME_NOT_INITIALIZED', `${home.dir} is not a Warren home yet (it has no key)`, {
      hint: 'Run `warren init` first (set WARREN_HOME to use another home).',
    })
  }
  const text = unitText(home, process.execPath, commandScript())
  if (opts.print === true) return void process.stdout.write(text)
  const dir = userUnitDir()
  const path = join(dir, `${opts.name}.service`)
  if (existsSync(path) && opts.force !== true) {
    throw new WarrenError('ERR_UNIT_EXISTS', `${path} exists already`, {
      hint: 'Replace it with `warren service install --force`, or choose another name with --name.',
      details: { path },
    })
  }
  await mkdir(dir, { recursive: true })
  await writeFile(path, text)
  say(`wrote ${path}`)
  say('start it now and at every login:')
  say(`  systemctl --user daemon-reload && systemctl --user enable --now ${opts.name}.service`)
  say(`keep it running when you are logged out: loginctl enable-linger ${process.env.USER ?? '$USER'}`)
  say(`logs: journalctl --user -u ${opts.name} -f, or warren logs -f`)
}

export function register(program: Command): void {
  const service = program.command('service').description('run the daemon as a systemd user service')
  service
    .command('install')
    .description('write a systemd user unit that runs `warren up` for this home (--print shows it instead)')
    .option('--print', 'print the unit to stdout and write nothing')
    .option('--name <unit>', 'unit name, without .service', 'warren')
    .option('--force', 'replace an existing unit file of that name')
    .action(async (opts: { print?: boolean; name: string; force?: boolean }, cmd: Command) => {
      await install(homeOf(cmd), opts)
    })
}
