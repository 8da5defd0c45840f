/**
 * Small process helpers for the NAT lab: run a command and collect its output, with a time bound.
 *
 * @packageDocumentation
 */
import { execFile, execFileSync } from 'node:child_process'
import { WarrenError } from '../../errors.ts'

export interface RunResult {
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Text written to the command's standard input. */
  input?: string
  /** Kill the command after this long (default 60 s). */
  timeoutMs?: number
}

/** Runs `cmd args…` and resolves with its output; rejects with ERR_LAB when it fails or times out. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr })
          return
        }
        reject(
          new WarrenError('ERR_LAB', `\`${[cmd, ...args].join(' ')}\` failed: ${stderr.trim() || err.message}`, {
            hint: 'The NAT lab needs root (or CAP_NET_ADMIN) and the Debian packages iproute2, nftables and conntrack.',
            details: { cmd, args, code: (err as { code?: unknown }).code },
            cause: err,
          }),
        )
      },
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

/** Synchronous variant for exit hooks; never throws, returns whether the command succeeded. */
export function runSyncQuiet(cmd: string, args: readonly string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 5_000 })
    return true
  } catch {
    return false
  }
}

/** Synchronous run returning stdout, or '' on failure (for exit hooks and listings). */
export function runSyncOutput(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 })
  } catch {
    return ''
  }
}
