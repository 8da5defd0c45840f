/**
 * One daemon per home: `daemon.pid` is created exclusively, holds the daemon's pid, and is removed on stop.
 * A pid file left by a crashed daemon (its process is gone) is replaced.
 */
import { open, readFile, unlink } from 'node:fs/promises'
import { WarrenError } from '../errors.ts'

/** True when a process with this pid exists (even one we may not signal). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid recorded in a pid file, or undefined when there is none or it is garbage. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

export function daemonRunningError(home: string, pid: number): WarrenError {
  return new WarrenError('ERR_DAEMON_RUNNING', `a Warren daemon (pid ${pid}) is already running for ${home}`, {
    hint: `Stop it with \`warren down\` (or \`kill ${pid}\`), or use another home with --home or WARREN_HOME.`,
    details: { home, pid },
  })
}

export interface PidFile {
  /** True when a stale pid file from a crashed daemon was replaced. */
  replacedStale: boolean
  stalePid?: number
  /** Removes the pid file if it still names this process. */
  release(): Promise<void>
}

/** Creates the pid file for this process, or throws ERR_DAEMON_RUNNING naming the running daemon's pid. */
export async function acquirePidFile(path: string, home: string): Promise<PidFile> {
  let stalePid: number | undefined
  let replacedStale = false
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      try {
        await fh.writeFile(`${process.pid}\n`)
      } finally {
        await fh.close()
      }
      const out: PidFile = {
        replacedStale,
        release: async () => {
          if ((await readPidFile(path)) === process.pid) await unlink(path).catch(() => {})
        },
      }
      if (stalePid !== undefined) out.stalePid = stalePid
      return out
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = await readPidFile(path)
    if (pid !== undefined && pid !== process.pid && processAlive(pid)) throw daemonRunningError(home, pid)
    // stale: the daemon that wrote it is gone (or the file is garbage)
    if (pid !== undefined) stalePid = pid
    replacedStale = true
    await unlink(path).catch(() => {})
  }
  throw new WarrenError('ERR_INTERNAL', `could not create ${path}: another process keeps recreating it`, {
    hint: 'Check whether two daemons are starting on the same home at once.',
  })
}
