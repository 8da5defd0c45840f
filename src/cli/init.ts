/** `warren init`: a new Ed25519 key (mode 0600) and a default config.json in the home. */
import { access, chmod, mkdir, writeFile } from 'node:fs/promises'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Command } from 'commander'
import { validateConfig } from '../config/load.ts'
import { defaultConfigInput } from '../config/schema.ts'
import { daemonRunningError, processAlive, readPidFile } from '../daemon/pidfile.ts'
import { WarrenError } from '../errors.ts'
import { generateNodeKey, saveNodeKey } from '../identity/keys.ts'
import { formatNodeId, formatNodeIdBase36 } from '../identity/node-id.ts'
import { collect, homeOf, say, sayJson, table } from './common.ts'

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

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
      const home = homeOf(cmd)
      const config = defaultConfigInput(opts.listen)
      if (opts.listen !== undefined) {
        try {
          validateConfig(config, '--listen')
        } catch (err) {
          throw new WarrenError(
            'ERR_BAD_ADDRESS',
            (err as WarrenError).message.replace(/^--listen is invalid:\s*/, '--listen: '),
            {
              hint: 'Give a multiaddr such as /ip4/0.0.0.0/tcp/4781 or /ip4/127.0.0.1/tcp/0.',
            },
          )
        }
      }
      const found = [(await exists(home.key)) ? 'key' : '', (await exists(home.config)) ? 'config.json' : ''].filter(
        (f) => f !== '',
      )
      if (found.length > 0 && opts.force !== true) {
        throw new WarrenError('ERR_HOME_EXISTS', `${home.dir} already has a ${found.join(' and ')}`, {
          hint: 'Use `warren init --force` to replace them (the node id changes), or pick another home with --home or WARREN_HOME.',
          details: { home: home.dir, found },
        })
      }
      const pid = await readPidFile(home.pid)
      if (pid !== undefined && processAlive(pid)) throw daemonRunningError(home.dir, pid)

      await mkdir(home.dir, { recursive: true, mode: 0o700 })
      await chmod(home.dir, 0o700)
      const key = await generateNodeKey()
      await saveNodeKey(home.key, key, { overwrite: opts.force === true })
      await writeFile(home.config, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })

      const peerId = peerIdFromPrivateKey(key)
      const out = {
        home: home.dir,
        id: formatNodeId(peerId),
        idBase36: formatNodeIdBase36(peerId),
        key: home.key,
        config: home.config,
      }
      if (opts.json === true) return sayJson(out)
      say(`created a Warren home in ${home.dir}`)
      say(
        table([
          ['node id', out.id],
          ['base36', out.idBase36],
          ['key', `${home.key} (mode 0600)`],
          ['config', home.config],
        ]),
      )
      say('next: start the daemon with `warren up`')
    })
}
