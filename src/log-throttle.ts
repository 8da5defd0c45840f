/**
 * Bounded logging for events a stranger can cause at will (malformed requests, refused reservations): the first event
 * of a kind is logged as it happens, the ones after it within `intervalMs` are only counted, and one line at the end
 * of that interval says how many there were. A flood costs at most two lines per kind per interval.
 *
 * @example
 * ```ts
 * const throttle = new LogThrottle({ intervalMs: 10_000, emit: (line) => log('warn', line) })
 * throttle.log('malformed', `refused a malformed request: ${why}`, 'malformed requests refused')
 * // … later: "41 more malformed requests refused in the last 10 s (not logged one by one)"
 * throttle.close() // logs what is still counted
 * ```
 */

interface Window {
  /** What the summary line calls the counted events. */
  what: string
  suppressed: number
  timer: ReturnType<typeof setTimeout> | undefined
}

export interface LogThrottleOptions {
  /** Length of one interval, ms. */
  intervalMs: number
  emit(line: string): void
}

export class LogThrottle {
  readonly #intervalMs: number
  readonly #emit: (line: string) => void
  readonly #windows = new Map<string, Window>()
  #logged = 0
  #suppressed = 0

  constructor(opts: LogThrottleOptions) {
    this.#intervalMs = opts.intervalMs
    this.#emit = opts.emit
  }

  /** Lines written and events only counted so far, all kinds together. */
  get counts(): { logged: number; suppressed: number } {
    return { logged: this.#logged, suppressed: this.#suppressed }
  }

  /**
   * Logs `line` unless an event of `kind` was logged less than one interval ago; then it is counted, and `what` names
   * the counted events in the summary line.
   */
  log(kind: string, line: string, what: string): void {
    const open = this.#windows.get(kind)
    if (open === undefined) {
      this.#write(line)
      const window: Window = { what, suppressed: 0, timer: undefined }
      window.timer = setTimeout(() => this.#flush(kind), this.#intervalMs)
      window.timer.unref()
      this.#windows.set(kind, window)
      return
    }
    open.suppressed++
    this.#suppressed++
  }

  #flush(kind: string): void {
    const window = this.#windows.get(kind)
    if (window === undefined) return
    clearTimeout(window.timer)
    this.#windows.delete(kind)
    if (window.suppressed > 0) {
      const secs = this.#intervalMs / 1000
      this.#write(`${window.suppressed} more ${window.what} in the last ${secs} s (not logged one by one)`)
    }
  }

  #write(line: string): void {
    this.#logged++
    this.#emit(line)
  }

  /** Logs the counts still pending and stops every timer. */
  close(): void {
    for (const kind of [...this.#windows.keys()]) this.#flush(kind)
  }
}
