/**
 * The work behind `warren init` and `warren id` without a daemon: key and config on disk. Kept apart from the
 * command definitions and loaded on demand, so commands that only talk to the daemon start fast.
 */
import { access, chmod, mkdir, writeFile } from 'node:fs/promises'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { HomePaths } from '../config/home.ts'
import { loadConfig, validateConfig } from '../config/load.ts'
import { defaultConfigInput } from '../config/schema.ts'
import { daemonRunningError, processAlive, readPidFile } from '../daemon/pidfile.ts'
import { WarrenError } from '../errors.ts'
import { generateNodeKey, loadNodeKey, saveNodeKey } from '../identity/keys.ts'
import { formatNodeId, formatNodeIdBase36 } from '../identity/node-id.ts'
import { encodeTicket } from '../identity/ticket.ts'
import type { NodeIdentity } from '../node/types.ts'

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

export interface InitResult {
  home: string
  id: string
  idBase36: string
  key: string
  config: string
}

/**
 * Creates the key (0600) and config.json. Refuses to overwrite either without `force` (ERR_HOME_EXISTS), and
 * refuses while a daemon runs on the home (ERR_DAEMON_RUNNING).
 */
export async function initHome(
  home: HomePaths,
  opts: { force?: boolean; listen?: string[] } = {},
): Promise<InitResult> {
  const config = defaultConfigInput(opts.listen)
  if (opts.listen !== undefined) {
    try {
      validateConfig(config, '--listen')
    } catch (err) {
      const problems = ((err as WarrenError).details?.problems as string[] | undefined) ?? []
      throw new WarrenError(
        'ERR_BAD_ADDRESS',
        `--listen: ${problems.map((p) => p.replace(/^listen\[\d+\]: /, '')).join('; ')}`,
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
  return {
    home: home.dir,
    id: formatNodeId(peerId),
    idBase36: formatNodeIdBase36(peerId),
    key: home.key,
    config: home.config,
  }
}

/** Config addresses another node could dial: announce, else listen without wildcard hosts or port 0. */
function dialableConfigAddrs(announce: string[], listen: string[]): string[] {
  if (announce.length > 0) return announce
  return listen.filter((a) => !/^\/ip[46]\/(0\.0\.0\.0|::)\//.test(a) && !/\/(tcp|udp)\/0(\/|$)/.test(a))
}

/** The identity from the key and config alone (no daemon). */
export async function offlineIdentity(home: HomePaths): Promise<NodeIdentity> {
  const key = await loadNodeKey(home.key)
  const config = await loadConfig(home.config)
  const id = peerIdFromPrivateKey(key)
  const addrs = dialableConfigAddrs(config.announce, config.listen)
  return {
    id: formatNodeId(id),
    idBase36: formatNodeIdBase36(id),
    ticket: encodeTicket({ id, addrs: addrs.map((a) => multiaddr(a)) }),
    // the id and the first relay: other nodes find the rest through discovery
    shortTicket: encodeTicket({
      id,
      addrs: config.relays.slice(0, 1).map((r) => multiaddr(r).encapsulate('/p2p-circuit')),
    }),
    addrs,
  }
}
