/**
 * Running a long-lived process in the foreground (`warren up`, `warren relay`): SIGINT/SIGTERM start a clean stop,
 * a second signal exits at once, and once stopped the process exits even if a library timer lingers.
 */

export interface Stoppable {
  stop(reason?: string): Promise<void>
  /** Settles once stopped, whoever asked. */
  readonly stopped: Promise<void>
}

/** Waits until `target` has stopped, stopping it on SIGINT/SIGTERM. */
export async function runInForeground(
  target: Stoppable,
  onSecondSignal?: (signal: NodeJS.Signals) => void,
): Promise<void> {
  let signals = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      onSecondSignal?.(signal)
      process.exit(130)
    }
    void target.stop(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  await target.stopped
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref()
}
