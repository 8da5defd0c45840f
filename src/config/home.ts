/**
 * The Warren home: one directory per node identity (`$WARREN_HOME`, default `~/.warren`).
 *
 * | file          | what                                                                  |
 * |---------------|-----------------------------------------------------------------------|
 * | `key`         | Ed25519 private key, mode 0600                                        |
 * | `config.json` | the user's config (see docs/config.md)                               |
 * | `state.json`  | what the daemon keeps across restarts: runtime services, forwards     |
 * | `api.sock`    | the daemon's local API (JSON-RPC 2.0), mode 0600                      |
 * | `daemon.pid`  | pid of the running daemon                                             |
 */
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'

export interface HomePaths {
  dir: string
  key: string
  config: string
  state: string
  pid: string
  /** Default API socket; config `api.socket` may move it. */
  socket: string
}

/** Resolves the home from an explicit path, `$WARREN_HOME`, or `~/.warren`. */
export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): HomePaths {
  const dir = resolve(explicit ?? env.WARREN_HOME ?? join(homedir(), '.warren'))
  return {
    dir,
    key: join(dir, 'key'),
    config: join(dir, 'config.json'),
    state: join(dir, 'state.json'),
    pid: join(dir, 'daemon.pid'),
    socket: join(dir, 'api.sock'),
  }
}

/** The API socket path for a config value (relative paths are inside the home). */
export function socketPath(home: HomePaths, configured: string): string {
  return isAbsolute(configured) ? configured : join(home.dir, configured)
}
