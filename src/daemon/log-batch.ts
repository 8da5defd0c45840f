/**
 * Log lines written in batches: the lines of {@link BATCH_MS} leave in one write to each sink (stderr, the log
 * file) instead of one write each. At the default level the daemon logs two lines per service stream on each end;
 * written one by one those were four system calls per stream per daemon (and a wake-up of whatever reads stderr),
 * a large part of what a new forwarded connection cost. Every line is kept and in order: the batch is written when
 * {@link BATCH_MS} have passed since its first line, when it reaches {@link BATCH_BYTES}, on `flush()`, and when the
 * process exits (also after an uncaught exception); a process killed with SIGKILL loses at most the last
 * {@link BATCH_MS} of lines.
 *
 * @example
 * ```ts
 * const out = batchLines((text) => process.stderr.write(text))
 * createLogger({ out })
 * ```
 */

/** How long a line may wait for others, ms. */
export const BATCH_MS = 10
/** A batch this large is written at once. */
export const BATCH_BYTES = 64 * 1024

export interface LineBatch {
  write(line: string): void
  /** Writes what is held now. */
  flush(): void
}

/** Collects lines for `write` (called with one or more whole lines at a time). */
export function batchLines(write: (text: string) => void): LineBatch {
  let held: string[] = []
  let bytes = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (held.length === 0) return
    const text = held.join('')
    held = []
    bytes = 0
    write(text)
  }
  process.on('exit', flush)
  return {
    write(line) {
      held.push(line)
      bytes += line.length
      if (bytes >= BATCH_BYTES) flush()
      else if (timer === undefined) {
        timer = setTimeout(flush, BATCH_MS)
        timer.unref()
      }
    },
    flush,
  }
}
