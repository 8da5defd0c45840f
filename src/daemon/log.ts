/**
 * Readable log lines for the daemon, on stderr: `2026-11-22T10:00:00.000Z info  listening on /ip4/…`.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export type LogFn = (level: LogLevel, message: string) => void

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }

/** One formatted line, without the newline. */
export function formatLogLine(level: LogLevel, message: string, now: Date = new Date()): string {
  return `${now.toISOString()} ${level.padEnd(5)} ${message}`
}

/** A logger writing lines at `min` level and above to `out` (stderr by default). */
export function createLogger(opts: { min?: LogLevel; out?: { write(s: string): unknown } } = {}): LogFn {
  const min = RANK[opts.min ?? 'info']
  const out = opts.out ?? process.stderr
  return (level, message) => {
    if (RANK[level] >= min) out.write(`${formatLogLine(level, message)}\n`)
  }
}

/** Reads the level from `WARREN_LOG` (debug, info, warn, error); info when unset or unknown. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const v = env.WARREN_LOG?.toLowerCase()
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : 'info'
}
