/** Runs the real `warren` CLI (src/cli/main.ts on the pinned Node) as a child process. */
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'

export const NODE = resolve('node_modules/.bin/node')
export const MAIN = resolve('src/cli/main.ts')
/** The `warren` command as users run it: a daemon or relay started with it gets the V8 and malloc settings of bin/warren.js. */
export const WARREN_BIN = resolve('bin/warren.js')

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout as bytes (for binary output, e.g. `warren connect`). */
  stdoutBytes: Buffer
}

export interface CliOptions {
  /** WARREN_HOME for the child; `--home` is not added, so the env path is what gets tested. */
  home?: string
  /** Bytes for stdin; stdin is closed after them (closed at once when absent). */
  input?: string | Buffer
  env?: NodeJS.ProcessEnv
  /** Kill the child after this long (it then fails the caller's assertions with code null). */
  timeoutMs?: number
  /** A command that runs the CLI (`['prlimit', '--nofile=260:260']`): spawned with the node command after it. */
  prefix?: string[]
}

/** Spawns `node src/cli/main.ts …args` with a clean environment (no inherited WARREN_HOME). */
export function spawnCli(args: string[], opts: Pick<CliOptions, 'home' | 'env' | 'prefix'> = {}): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env }
  delete env.WARREN_HOME
  if (opts.home !== undefined) env.WARREN_HOME = opts.home
  const [cmd, ...rest] = [...(opts.prefix ?? []), NODE, MAIN, ...args]
  return spawn(cmd!, rest, { env, stdio: ['pipe', 'pipe', 'pipe'] })
}

/** Runs one command to its end and collects its output. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts)
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (d: Buffer) => out.push(d))
  child.stderr!.on('data', (d: Buffer) => err.push(d))
  child.stdin!.on('error', () => {}) // the command may exit before reading all of its input
  child.stdin!.end(opts.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
  return new Promise((resolveRun) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const stdoutBytes = Buffer.concat(out)
      resolveRun({
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBytes,
      })
    })
  })
}
