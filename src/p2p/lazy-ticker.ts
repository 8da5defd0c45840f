/**
 * A repeating check that runs only while it has something to look at. Each round returns whether it found anything
 * to watch; after a round that found nothing the timer stops, and {@link LazyTicker.wake} (a new connection, a new
 * stream) starts it again. The watches of direct paths and relay links look every 100-500 ms: with nothing to watch
 * they woke an idle daemon 17 times a second, 0.6-1 s of CPU a minute on the 2-vCPU machine of docs/performance.md.
 *
 * @example
 * ```ts
 * const ticker = new LazyTicker(100, () => checkConnections() > 0)
 * ticker.start()
 * libp2p.addEventListener('connection:open', () => ticker.wake())
 * // …
 * ticker.stop()
 * ```
 */
export class LazyTicker {
  readonly #ms: number
  readonly #round: () => boolean
  readonly #onWake: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #running = false

  /** `round` runs every `ms` while it returns true; `onWake` runs whenever the timer starts again. */
  constructor(ms: number, round: () => boolean, onWake?: () => void) {
    this.#ms = ms
    this.#round = round
    this.#onWake = onWake
  }

  /** Starts ticking (a no-op when started); the first round runs `ms` from now. */
  start(): void {
    this.#running = true
    this.wake()
  }

  /** Something may need watching: ticks again if started and asleep. */
  wake(): void {
    if (!this.#running || this.#timer !== undefined) return
    this.#onWake?.()
    this.#timer = setInterval(() => {
      if (!this.#round()) this.#sleep()
    }, this.#ms)
    this.#timer.unref()
  }

  /** Stops for good, until the next {@link start}. */
  stop(): void {
    this.#running = false
    this.#sleep()
  }

  /** Whether the timer is off (stopped, or asleep with nothing to watch). */
  get sleeping(): boolean {
    return this.#timer === undefined
  }

  #sleep(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}
