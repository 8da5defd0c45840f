/**
 * Readable log lines for the daemon, on stderr: `2026-11-22T10:00:00.000Z info  listening on /ip4/…`.
 *
 * Messages carry names peers and clients chose (SOCKS host names, service names, HTTP paths), so every message is
 * escaped here, in the one place every line passes: a control character, line or paragraph separator or bidi
 * override comes out as `\n`, `\x1b`, `\u2028` …, and one call is always one line. With the `json` format each line is
 * one JSON object instead (`WARREN_LOG_FORMAT=json`, `warren up --log-format json`).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Where Warren's parts write their log lines: one function, a level and a message. */
export type Logger = (level: LogLevel, message: string) => void

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }

/** C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings, overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
/** The same characters, for a test that finds the first one (no `g`: `test` keeps no state). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const ANY_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** `text` with every character that could break or disguise a log line written as an escape. */
export function escapeControl(text: string): string {
  // most lines have nothing to escape: a test is far cheaper than a replace with a function
  if (!ANY_UNSAFE.test(text)) return text
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0)
    return SHORT[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`)
  })
}

/** One formatted line, without the newline; the message is escaped (escapeControl). */
export function formatLogLine(level: LogLevel, message: string, now?: Date): string {
  return `${now === undefined ? isoNow() : now.toISOString()} ${PADDED[level]} ${escapeControl(String(message))}`
}

const PADDED: Record<LogLevel, string> = { debug: 'debug', info: 'info ', warn: 'warn ', error: 'error' }

let isoAt = -1
let iso = ''

/** The time now as `toISOString()` writes it, made once per millisecond (a busy daemon logs many lines in one). */
function isoNow(): string {
  const ms = Date.now()
  if (ms !== isoAt) {
    isoAt = ms
    iso = new Date(ms).toISOString()
  }
  return iso
}

/**
 * One JSON object per line, for log collectors: `{"time":"…","level":"info","msg":"…"}`. JSON escapes the C0
 * controls; DEL, the C1 controls, the line and paragraph separators and bidi controls are escaped by {@link jsonText}.
 */
export function formatJsonLogLine(level: LogLevel, message: string, now?: Date): string {
  return jsonText({ time: now === undefined ? isoNow() : now.toISOString(), level, msg: String(message) })
}

/** What JSON.stringify leaves as it is and a terminal may act on: DEL, C1 controls, separators, bidi controls. */
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * `value` as JSON text (indented by `indent`) with every character a terminal or a log viewer could act on written
 * as a `\uXXXX` escape: the same JSON, safe to print.
 */
export function jsonText(value: unknown, indent?: number): string {
  // JSON.stringify gives undefined for undefined (and functions) although its type says string
  return (JSON.stringify(value, null, indent) ?? 'null').replace(
    JSON_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** `pretty`: readable lines (the default); `json`: one JSON object per line. */
export type LogFormat = 'pretty' | 'json'

/** A logger writing lines at `min` level and above to `out` (stderr by default), in `format`. */
export function createLogger(
  opts: { min?: LogLevel; out?: { write(s: string): unknown }; format?: LogFormat } = {},
): Logger {
  const min = RANK[opts.min ?? 'info']
  const out = opts.out ?? process.stderr
  const format = opts.format === 'json' ? formatJsonLogLine : formatLogLine
  return (level, message) => {
    if (RANK[level] >= min) out.write(`${format(level, message)}\n`)
  }
}

/** Reads the format from `WARREN_LOG_FORMAT` (json or pretty); pretty when unset or unknown. */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat {
  return env.WARREN_LOG_FORMAT?.toLowerCase() === 'json' ? 'json' : 'pretty'
}

/** Reads the level from `WARREN_LOG` (debug, info, warn, error); info when unset or unknown. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const v = env.WARREN_LOG?.toLowerCase()
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : 'info'
}
