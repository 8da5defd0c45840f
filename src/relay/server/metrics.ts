/**
 * Prometheus metrics of a relay (prom-client, text format), read from its status at each scrape and served at
 * `GET /metrics` on relay config `metrics.listen` (`warren relay --metrics <host:port>`):
 *
 * - `warren_relay_reservations{kind}`                 reservations held now; `kind` `admitted` (on the allow list or
 *                                                      admitted by a token: unlimited) or `stranger` (bounded)
 * - `warren_relay_reservations_released_total`        reservations dropped because their node disconnected
 * - `warren_relay_circuits_open`                      circuits (relayed connections) open now
 * - `warren_relay_circuits_opened_total`              circuits opened since start
 * - `warren_relay_circuit_bytes_total`                bytes relayed by circuits since start, both ways together
 * - `warren_relay_circuits_ended_total{cause}`        circuits ended: `limit` (data or duration limit), `closed`,
 *                                                      `error`
 * - `warren_relay_refusals_total{kind}`               refusals: `reservation` or `circuit` (private relay, caps)
 * - `warren_relay_connections`                        connections open now (nodes and other relays)
 * - `warren_relay_stun_answered_total{transport}`     STUN binding requests answered, `udp` or `tcp`
 *
 * No metric names a node: the text can be scraped from elsewhere without handing out who uses the relay.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, Registry } from 'prom-client'
import { formatListenAddress, parseListenAddress } from '../../config/listen-address.ts'
import { WarrenError } from '../../errors.ts'
import type { RelayStatus } from './relay-node.ts'

export interface RelayMetrics {
  registry: Registry
  /** The text format, for GET /metrics. */
  text(): Promise<string>
}

/** A counter whose value is read from the relay at each scrape (prom-client counters have no `set`). */
function readCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => Array<[Record<string, string>, number]>,
  labelNames: string[] = [],
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset()
      for (const [labels, v] of read()) this.inc(labels, v)
    },
  })
}

export function createRelayMetrics(status: () => RelayStatus): RelayMetrics {
  const registry = new Registry()
  // one status per scrape, shared by every metric of it
  let scrape: RelayStatus | undefined
  const st = (): RelayStatus => {
    scrape ??= status()
    return scrape
  }
  new Gauge({
    name: 'warren_relay_reservations',
    help: 'Reservations held now, by kind: admitted (allow list or token, unlimited) or stranger (bounded).',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      const r = st().reservations
      const admitted = r.filter((x) => x.allowed).length
      this.set({ kind: 'admitted' }, admitted)
      this.set({ kind: 'stranger' }, r.length - admitted)
    },
  })
  readCounter(
    registry,
    'warren_relay_reservations_released_total',
    'Reservations dropped because their node had no connection to the relay left.',
    () => [[{}, st().totals.releasedReservations]],
  )
  new Gauge({
    name: 'warren_relay_circuits_open',
    help: 'Circuits (relayed connections) open now.',
    registers: [registry],
    collect() {
      this.set(st().circuits.length)
    },
  })
  readCounter(registry, 'warren_relay_circuits_opened_total', 'Circuits opened since start.', () => [
    [{}, st().totals.circuitsOpened],
  ])
  readCounter(
    registry,
    'warren_relay_circuit_bytes_total',
    'Bytes relayed by circuits since start, both directions together.',
    () => [[{}, st().totals.bytesRelayed]],
  )
  readCounter(
    registry,
    'warren_relay_circuits_ended_total',
    'Circuits that ended since start, by cause: limit (data or duration limit reached), closed, error.',
    () => Object.entries(st().totals.circuitsEnded).map(([cause, n]) => [{ cause }, n]),
    ['cause'],
  )
  readCounter(
    registry,
    'warren_relay_refusals_total',
    'Reservations and circuits the relay refused (private relay, caps), by kind.',
    () => [
      [{ kind: 'reservation' }, st().totals.refusedReservations],
      [{ kind: 'circuit' }, st().totals.refusedCircuits],
    ],
    ['kind'],
  )
  new Gauge({
    name: 'warren_relay_connections',
    help: 'Connections open now (nodes and other relays).',
    registers: [registry],
    collect() {
      this.set(st().totals.connections)
    },
  })
  new Gauge({
    name: 'warren_relay_parked_connections',
    help: 'Idle client connections parked now: socket and session keys kept, the muxer and its streams let go.',
    registers: [registry],
    collect() {
      this.set(st().totals.parked.now)
    },
  })
  readCounter(
    registry,
    'warren_relay_connection_wakes_total',
    'Parked connections woken since start, by a stream, a circuit or a close.',
    () => [[{}, st().totals.parked.wakes]],
  )
  readCounter(
    registry,
    'warren_relay_stun_answered_total',
    'STUN binding requests answered, by transport.',
    () => {
      const stun = st().stun
      if (stun === null) return []
      const out: Array<[Record<string, string>, number]> = [[{ transport: 'udp' }, stun.answered]]
      if (stun.answeredTcp !== null) out.push([{ transport: 'tcp' }, stun.answeredTcp])
      return out
    },
    ['transport'],
  )
  return {
    registry,
    text: async () => {
      scrape = undefined
      try {
        return await registry.metrics()
      } finally {
        scrape = undefined
      }
    },
  }
}

export interface RelayMetricsServer {
  /** host:port actually bound. */
  readonly listen: string
  close(): Promise<void>
}

const TEXT = 'text/plain; charset=utf-8'

/** Serves `GET /metrics` on `listen` (host:port; port 0 picks a free one); throws ERR_LISTEN_FAILED. */
export async function startRelayMetricsServer(listen: string, metrics: RelayMetrics): Promise<RelayMetricsServer> {
  const want = parseListenAddress(listen)
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, TEXT, 'only GET and HEAD\n')
    if ((req.url ?? '/').split('?')[0] !== '/metrics') {
      return send(404, TEXT, 'not found: the relay serves Prometheus metrics at /metrics\n')
    }
    metrics.text().then(
      (body) => send(200, metrics.registry.contentType, body),
      (err: Error) => send(500, TEXT, `${err.message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void =>
      reject(
        new WarrenError(
          'ERR_LISTEN_FAILED',
          `cannot serve the relay's metrics on ${formatListenAddress(want)}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`,
          {
            hint: 'Pass another --metrics host:port (or metrics.listen in relay.json), or stop what uses it.',
            cause: err,
          },
        ),
      )
    server.once('error', fail)
    server.listen(want.port, want.host, () => {
      server.off('error', fail)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return {
    listen: formatListenAddress({ host: want.host, port }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
