/**
 * The relay's connection cap (`maxConnections` in relay.json, `--max-connections`) made visible. js-libp2p refuses
 * inbound connections past its `maxConnections` with nothing but a debug line, and a client only sees its connection
 * closed; the relay logs a warning while it is at the cap (at most once a minute), and checks at start that the
 * process may open that many file descriptors, each connection's socket needing one.
 */
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'

/** Descriptors the relay needs besides its connections' sockets (listeners, the API, the DHT, files). */
const SPARE_DESCRIPTORS = 256
const WARN_INTERVAL_MS = 60_000

/** Why `maxConnections` cannot be reached under the open-files limit `nofile`, or undefined when it can. */
export function descriptorProblem(maxConnections: number, nofile: number | undefined): string | undefined {
  if (nofile === undefined || nofile >= maxConnections + SPARE_DESCRIPTORS) return undefined
  return (
    `maxConnections is ${maxConnections} but this process may open only ${nofile} files (ulimit -n): connections ` +
    `past about ${Math.max(0, nofile - SPARE_DESCRIPTORS)} will fail with EMFILE; raise the limit to at least ` +
    `${maxConnections + SPARE_DESCRIPTORS} (ulimit -n, or LimitNOFILE= in a systemd unit)`
  )
}

/**
 * Warns (at most once a minute) while the relay's connections are at `max`, checked every `intervalMs`: a poll, not
 * js-libp2p's connection events, whose listeners are a cost on every connection of a busy relay.
 */
export function watchConnectionCap(
  libp2p: Pick<WarrenLibp2p, 'getConnections'>,
  max: number,
  log: Logger,
  intervalMs = 5_000,
): { stop(): void } {
  let warnedAt = Number.NEGATIVE_INFINITY
  const timer = setInterval(() => {
    const open = libp2p.getConnections().length
    const now = Date.now()
    if (open < max || now - warnedAt < WARN_INTERVAL_MS) return
    warnedAt = now
    log(
      'warn',
      `the relay holds ${open} connections, its maxConnections: new connections are refused until some close; ` +
        'raise maxConnections in relay.json (or --max-connections) and restart the relay',
    )
  }, intervalMs)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
