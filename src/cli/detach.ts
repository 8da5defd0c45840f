/**
 * `warren up --detach`: starts `warren up` as a background process of its own session and returns once its API
 * answers, printing its pid, node id and where its log goes. A daemon that exits while starting (a bad config,
 * another daemon on the home) has its error printed and its exit status returned.
 *
 * The background daemon logs only to `<home>/daemon.log` (src/daemon/log-file.ts); what it writes to stderr (the
 * error that stopped it, if any) goes to `<home>/daemon.stderr`, truncated at each start.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenClient } from '../client/client.ts'
import type { HomePaths } from '../config/home.ts'
import { logFilePath } from '../daemon/log-file.ts'
import { daemonRunningError, processAlive, readPidFile } from '../daemon/pidfile.ts'
import { WarrenError } from '../errors.ts'
import type { NodeStatus } from '../node/types.ts'

/** Set in the detached daemon's environment: it logs to its log file only. */
export const DETACHED_ENV = 'WARREN_DETACHED'

export interface Detached {
  pid: number
  id: string
  log: string
}

/** Waits for the API of the daemon `pid`, or for the child to exit first (then throws its error). */
async function waitForApi(
  home: HomePaths,
  pid: number,
  exited: Promise<number | null>,
  timeoutMs: number,
): Promise<NodeStatus> {
  const deadline = Date.now() + timeoutMs
  let exit: number | null | undefined
  void exited.then((code) => {
    exit = code
  })
  for (;;) {
    if (exit !== undefined) {
      const stderr = readFileSync(join(home.dir, 'daemon.stderr'), 'utf8').trim()
      throw new WarrenError('ERR_DAEMON_NOT_RUNNING', `the daemon exited while starting (status ${exit})`, {
        hint: stderr === '' ? `See ${logFilePath(home.dir)}.` : stderr.replace(/^warren: /, ''),
        details: { status: exit },
      })
    }
    // the API that answers must be this child's: its pid file names it once it holds the home
    if ((await readPidFile(home.pid)) !== pid) {
      if (Date.now() > deadline) throw timedOut(home, timeoutMs)
      await new Promise((r) => setTimeout(r, 100))
      continue
    }
    try {
      const client = await WarrenClient.connect({ home })
      try {
        return await client.status()
      } finally {
        client.close()
      }
    } catch (err) {
      if (!(err instanceof WarrenError) || (err.code !== 'ERR_DAEMON_NOT_RUNNING' && err.code !== 'ERR_API')) throw err
    }
    if (Date.now() > deadline) throw timedOut(home, timeoutMs)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function timedOut(home: HomePaths, timeoutMs: number): WarrenError {
  return new WarrenError('ERR_TIMEOUT', `the daemon did not answer within ${timeoutMs / 1000} s`, {
    hint: `It may still be starting; see \`warren logs\` (${logFilePath(home.dir)}).`,
  })
}

/** Starts `warren up <args>` in the background on `home`; resolves once its API answers. */
export async function detach(home: HomePaths, args: string[], timeoutMs = 60_000): Promise<Detached> {
  const running = await readPidFile(home.pid)
  if (running !== undefined && processAlive(running)) throw daemonRunningError(home.dir, running)
  const errFile = join(home.dir, 'daemon.stderr')
  const fd = openSync(errFile, 'w', 0o600)
  const script = process.argv[1]!
  const child = spawn(process.execPath, [...process.execArgv, script, '--home', home.dir, 'up', ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', fd],
    env: { ...process.env, [DETACHED_ENV]: '1' },
  })
  closeSync(fd)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  try {
    const st = await waitForApi(home, child.pid!, exited, timeoutMs)
    return { pid: child.pid!, id: st.id, log: logFilePath(home.dir) }
  } finally {
    child.unref()
  }
}
