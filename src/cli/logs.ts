/**
 * `warren logs [-f] [-n <lines>]`: the daemon's recent log from `<home>/daemon.log` (and `daemon.log.1` before it
 * when more lines are asked for than the current file holds); `-f` keeps printing new lines as the daemon writes
 * them, across a rotation, until Ctrl-C.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import type { Command } from 'commander'
import { logFilePath } from '../daemon/log-file.ts'
import { WarrenError } from '../errors.ts'
import { homeOf } from './common.ts'

function wholeNumber(v: string): number {
  if (!/^\d{1,7}$/.test(v)) {
    throw new WarrenError('ERR_USAGE', `-n ${JSON.stringify(v)} is not a number of lines`, {
      hint: 'For example `warren logs -n 200`.',
    })
  }
  return Number(v)
}

/** The last `n` lines of the log (the rotated file first when needed). */
export function lastLines(path: string, n: number): string[] {
  const read = (p: string): string[] =>
    existsSync(p)
      ? readFileSync(p, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : []
  let lines = read(path)
  if (lines.length < n) lines = [...read(`${path}.1`), ...lines]
  return n === 0 ? [] : lines.slice(-n)
}

/** Prints what is appended to `path` from `offset` on, polling; starts over when the file is rotated. */
function follow(path: string, offset: number): Promise<void> {
  let pos = offset
  let ino = existsSync(path) ? statSync(path).ino : 0
  return new Promise(() => {
    setInterval(() => {
      if (!existsSync(path)) return
      const st = statSync(path)
      if (st.ino !== ino || st.size < pos) {
        ino = st.ino
        pos = 0
      }
      if (st.size === pos) return
      const fd = openSync(path, 'r')
      try {
        const buf = Buffer.alloc(st.size - pos)
        const n = readSync(fd, buf, 0, buf.length, pos)
        pos += n
        process.stdout.write(buf.subarray(0, n))
      } finally {
        closeSync(fd)
      }
    }, 200)
  })
}

export function register(program: Command): void {
  program
    .command('logs')
    .description("show the daemon's recent log (kept in <home>/daemon.log); -f follows it")
    .option('-f, --follow', 'keep printing new lines as they are written (Ctrl-C ends)')
    .option('-n, --lines <count>', 'how many of the last lines to show', wholeNumber, 100)
    .addHelpText(
      'after',
      '\nThe log holds at most about 2 MiB: daemon.log, and daemon.log.1 before it. Its level is WARREN_LOG of the\n' +
        'daemon (info by default: one line per service stream accepted, refused and ended).',
    )
    .action(async (opts: { follow?: boolean; lines: number }, cmd: Command) => {
      const home = homeOf(cmd)
      const path = logFilePath(home.dir)
      if (!existsSync(path) && opts.follow !== true) {
        throw new WarrenError('ERR_DAEMON_NOT_RUNNING', `no daemon log at ${path} yet`, {
          hint: 'Start the daemon with `warren up` (or `warren up --detach`); it logs there.',
          details: { path },
        })
      }
      const lines = lastLines(path, opts.lines)
      if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`)
      if (opts.follow === true) await follow(path, existsSync(path) ? statSync(path).size : 0)
    })
}
