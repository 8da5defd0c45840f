/**
 * The relay home: its own directory, apart from any node's home, so that a relay and a node on one machine never
 * share a key. `--home`, else `$WARREN_RELAY_HOME`, else `~/.warren-relay`.
 *
 * | file         | what                                                    |
 * |--------------|---------------------------------------------------------|
 * | `key`        | Ed25519 private key, mode 0600, made on the first start |
 * | `relay.json` | settings (optional; see docs/relay.md)                  |
 * | `relay.sock` | local API for `warren relay status`, mode 0600          |
 * | `relay.pid`  | pid of the running relay                                |
 */
import { chmod, mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { isWarrenError } from '../../errors.ts'
import { generateNodeKey, loadNodeKey, saveNodeKey } from '../../identity/keys.ts'

export interface RelayHome {
  dir: string
  key: string
  config: string
  pid: string
  /** Default API socket; `api.socket` in relay.json may move it. */
  socket: string
}

export function resolveRelayHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): RelayHome {
  const dir = resolve(explicit ?? env.WARREN_RELAY_HOME ?? join(homedir(), '.warren-relay'))
  return {
    dir,
    key: join(dir, 'key'),
    config: join(dir, 'relay.json'),
    pid: join(dir, 'relay.pid'),
    socket: join(dir, 'relay.sock'),
  }
}

/** The API socket for a configured value (relative paths are inside the home). */
export function relaySocketPath(home: RelayHome, configured: string): string {
  return isAbsolute(configured) ? configured : join(home.dir, configured)
}

/** Loads the relay's key, creating the home (0700) and a new key (0600) on the first start. */
export async function loadOrCreateRelayKey(home: RelayHome): Promise<{ key: PrivateKey; created: boolean }> {
  await mkdir(home.dir, { recursive: true, mode: 0o700 })
  await chmod(home.dir, 0o700).catch(() => {})
  try {
    return { key: await loadNodeKey(home.key), created: false }
  } catch (err) {
    if (!isWarrenError(err, 'ERR_HOME_NOT_INITIALIZED')) throw err
  }
  const key = await generateNodeKey()
  await saveNodeKey(home.key, key)
  return { key, created: true }
}
