/**
 * Prometheus metrics of a node (prom-client, text format), fed by its stream counters and read from its status:
 *
 * - `warren_stream_bytes_total{direction,service,peer,way}`  bytes of service streams; `way` is `in` (from the peer)
 *   or `out` (to it), `direction` is `incoming` (a peer uses this node's service) or `outgoing`
 * - `warren_streams_open{direction,service}`                  service streams open now
 * - `warren_stream_ends_total{direction,service,cause}`       streams ended, by cause (ok, reset, error, refused, …)
 * - `warren_dial_seconds{result}`                             time to get a connection for an outgoing stream
 * - `warren_paths{kind}`                                      connected peers by path kind (direct, relay)
 * - `warren_local_connections`                                local connections holding a file descriptor now
 * - `warren_open_files_limit`                                 the process's open-file limit (when it can be read)
 * - `warren_file_limit_refusals_total`                        connections and streams refused at that limit
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { OpenFilesStatus } from '../open-files.ts'
import type { StreamCounters } from '../services/stream-counters.ts'

export interface MetricsSource {
  counters: StreamCounters
  /** The kinds of path to each connected peer now (`direct`, `relay`). */
  pathKinds(): string[]
  /** The process's descriptor budget (src/open-files.ts). */
  openFiles(): OpenFilesStatus
}

export interface NodeMetrics {
  registry: Registry
  /** The text format, for GET /metrics. */
  text(): Promise<string>
  close(): void
}

export function createNodeMetrics(src: MetricsSource): NodeMetrics {
  const registry = new Registry()
  const bytes = new Counter({
    name: 'warren_stream_bytes_total',
    help: 'Bytes of service streams, by direction, service, peer and way (in: from the peer, out: to it).',
    labelNames: ['direction', 'service', 'peer', 'way'] as const,
    registers: [registry],
    // the open streams' bytes so far reach the counter through the counters' sampler
    collect: () => src.counters.sample(),
  })
  const ends = new Counter({
    name: 'warren_stream_ends_total',
    help: 'Service streams that ended, by direction, service and cause.',
    labelNames: ['direction', 'service', 'cause'] as const,
    registers: [registry],
  })
  new Gauge({
    name: 'warren_streams_open',
    help: 'Service streams open now, by direction and service.',
    labelNames: ['direction', 'service'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const snap = src.counters.snapshot()
      for (const direction of ['incoming', 'outgoing'] as const) {
        for (const [service, t] of Object.entries(snap[direction].services)) this.set({ direction, service }, t.open)
      }
    },
  })
  const dial = new Histogram({
    name: 'warren_dial_seconds',
    help: 'Time to get a connection to a peer for an outgoing service stream, by result (ok, failed).',
    labelNames: ['result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  })
  new Gauge({
    name: 'warren_paths',
    help: 'Connected peers by the kind of path to them (direct, relay).',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      this.reset()
      this.set({ kind: 'direct' }, 0)
      this.set({ kind: 'relay' }, 0)
      for (const kind of src.pathKinds()) this.inc({ kind })
    },
  })
  new Gauge({
    name: 'warren_local_connections',
    help: 'Local connections (clients of forwards, the access port and the transparent listener, warren connect streams; service targets) holding a file descriptor now.',
    registers: [registry],
    collect() {
      this.set(src.openFiles().localConnections)
    },
  })
  new Gauge({
    name: 'warren_open_files_limit',
    help: "The process's open-file limit (ulimit -n); absent when it cannot be read.",
    registers: [registry],
    collect() {
      const { limit } = src.openFiles()
      if (limit === null) this.reset()
      else this.set(limit)
    },
  })
  new Counter({
    name: 'warren_file_limit_refusals_total',
    help: 'Local connections and service streams refused because the process was at its open-file limit.',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(src.openFiles().refused)
    },
  })
  const unlisten = src.counters.listen({
    bytes: (l, d) => {
      if (d.bytesIn > 0) bytes.inc({ direction: l.direction, service: l.service, peer: l.peer, way: 'in' }, d.bytesIn)
      if (d.bytesOut > 0) {
        bytes.inc({ direction: l.direction, service: l.service, peer: l.peer, way: 'out' }, d.bytesOut)
      }
    },
    ended: (e) => ends.inc({ direction: e.direction, service: e.counted.service, cause: e.cause }),
    dialed: (_peer, ms, ok) => dial.observe({ result: ok ? 'ok' : 'failed' }, ms / 1000),
  })
  return { registry, text: () => registry.metrics(), close: unlisten }
}
