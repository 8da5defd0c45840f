/**
 * Readable log lines for the daemon, on stderr: `2026-11-22T10:00:00.000Z info  listening on /ip4/…`.
 *
 * Messages carry names peers and clients chose (SOCKS host names, service names, HTTP paths), so every message is
 * escaped here, in the one place every line passes: a control character, line or paragraph separator or bidi
 * override comes out as `\n`, `\x1b`, `\u2028` …, and one call is always one line.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Where Warren's parts write their log lines: one function, a level and a message. */
export type Logger = (level: LogLevel, message: string) => void

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }

/** C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings, overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** `text` with every character that could break or disguise a log line written as an escape. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0)
    return SHORT[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`)
  })
}

/** One formatted line, without the newline; the message is escaped (escapeControl). */
export function formatLogLine(level: LogLevel, message: string, now: Date = new Date()): string {
  return `${now.toISOString()} ${level.padEnd(5)} ${escapeControl(String(message))}`
}

/** A logger writing lines at `min` level and above to `out` (stderr by default). */
export function createLogger(opts: { min?: LogLevel; out?: { write(s: string): unknown } } = {}): Logger {
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
