/**
 * Runs the system tools transparent mode drives (`nft`, `ip`, `resolvectl`) with a time bound; a failure becomes
 * ERR_TRANSPARENT_SETUP with the command and its output.
 */
import { execFile } from 'node:child_process'
import { WarrenError } from '../../errors.ts'

export interface ToolResult {
  stdout: string
  stderr: string
}

/** How a tool is run: {@link runTool}, or a stand-in that records the command lines (tests). */
export type ToolRunner = (cmd: string, args: readonly string[]) => Promise<ToolResult>

const PACKAGES: Record<string, string> = { nft: 'nftables', ip: 'iproute2', resolvectl: 'systemd-resolved' }

/** Runs `cmd args…` (stdin from `input`); rejects with ERR_TRANSPARENT_SETUP when it cannot run or exits non-zero. */
export function runTool(cmd: string, args: readonly string[], input?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: 10_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr })
          return
        }
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
        const line = [cmd, ...args].join(' ')
        reject(
          new WarrenError(
            'ERR_TRANSPARENT_SETUP',
            missing
              ? `transparent mode needs \`${cmd}\`, which is not installed`
              : `\`${line}\` failed: ${stderr.trim() || err.message}`,
            {
              hint: missing
                ? `Install ${PACKAGES[cmd] ?? cmd} (Debian/Ubuntu: apt install ${PACKAGES[cmd] ?? cmd}), or use the access port instead.`
                : 'Read the output above; docs/transparent.md lists what transparent mode changes on the system.',
              details: { cmd, args: [...args], stderr: stderr.trim() },
              cause: err,
            },
          ),
        )
      },
    )
    // a tool that exits before reading its input closes the pipe: its exit status tells what went wrong
    child.stdin?.on('error', () => {})
    child.stdin?.end(input ?? '')
  })
}

/** Like {@link runTool}, but resolves undefined instead of failing (for probes and best-effort removal). */
export async function tryTool(cmd: string, args: readonly string[], input?: string): Promise<ToolResult | undefined> {
  try {
    return await runTool(cmd, args, input)
  } catch {
    return undefined
  }
}
