/**
 * Exiting once stdout and stderr have been handed to the system. `process.exit()` drops what a stream still
 * queues: into a pipe whose reader is slower than the writer (`warren relay status --json | jq`, a test reading
 * the output), a long answer was cut short with exit status 0.
 */

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve()
  // a write's callback runs once everything queued before it is written
  return new Promise((resolve) => {
    stream.write('', () => resolve())
  })
}

/** Waits for stdout and stderr to flush (at most `timeoutMs`), then exits with `code`. */
export async function flushThenExit(code: number, timeoutMs = 30_000): Promise<never> {
  const timer = setTimeout(() => process.exit(code), timeoutMs)
  timer.unref()
  await Promise.all([flushed(process.stdout), flushed(process.stderr)])
  process.exit(code)
}
