/**
 * `warren relay` as a process: the relay home (key made on the first start), relay.json merged with the flags, one
 * relay per home (pid file), the relay itself, and a local API on a Unix socket (mode 0600, the daemon's JSON-RPC
 * server) for `warren relay status`. Stopping undoes all of it in reverse.
 *
 * @example
 * ```ts
 * const d = await runRelayDaemon({ home: '/tmp/relay', overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
 * console.log(d.relay.addrs)
 * await d.stop('done')
 * ```
 */
import type { Socket } from 'node:net'
import { isWarrenError, WarrenError } from '../errors.ts'
import type { Logger } from '../log.ts'
import {
  type RelayConfig,
  type RelayConfigInput,
  readRelayConfigFile,
  validateRelayConfig,
} from '../relay/server/config.ts'
import { startHeapCompaction } from '../relay/server/heap-compact.ts'
import { loadOrCreateRelayKey, type RelayHome, relaySocketPath, resolveRelayHome } from '../relay/server/home-dir.ts'
import { createRelayMetrics, type RelayMetricsServer, startRelayMetricsServer } from '../relay/server/metrics.ts'
import { parkingCounts } from '../relay/server/parked-link.ts'
import { type Relay, type RelayStatus, startRelay } from '../relay/server/relay-node.ts'
import { ApiServer } from './api-server.ts'
import { describeTrim, type IdleTrimOptions, startIdleTrim, trimMalloc } from './idle-trim.ts'
import { acquirePidFile } from './pidfile.ts'
import { type RelayWeb, startRelayWeb } from './relay-web.ts'
import { stopSequence } from './stop-sequence.ts'

/** The relay's local API: method → params → result. */
export interface RelayApiMethods {
  'relay.status': { params: undefined; result: RelayStatus }
  'relay.stop': { params: undefined; result: { stopping: true; pid: number } }
  'relay.reload': { params: undefined; result: RelayReloadResult }
}

/** What a reload took (`warren relay reload`, SIGHUP). */
export interface RelayReloadResult {
  reloaded: true
  /** The file read (with the command-line flags of the start on top). */
  config: string
  allow: number
  tokens: number
  private: boolean
  limits: RelayConfig['limits']
  /** Settings that differ from the running ones but take a restart (listen addresses, ports …). */
  restartNeeded: string[]
}

export interface RelayDaemonOptions {
  home?: string | RelayHome
  /** Settings from flags; they win over relay.json (`allow` lists are joined). */
  overrides?: RelayConfigInput
  log?: Logger
}

export interface RelayDaemon {
  readonly home: RelayHome
  readonly socket: string
  readonly config: RelayConfig
  readonly relay: Relay
  /** The web app served beside the relay (`--web`), if any. */
  readonly web: RelayWeb | undefined
  /** host:port of the Prometheus metrics (`--metrics`, relay.json `metrics.listen`), if served. */
  readonly metrics: string | undefined
  /** True when this start created the relay's key. */
  readonly createdKey: boolean
  /**
   * Reads relay.json again (the start's flags still on top) and applies the allow list, tokens, `private` and limits
   * without a restart; connections, reservations and circuits stay. A bad file changes nothing (ERR_CONFIG_INVALID).
   */
  reload(): Promise<RelayReloadResult>
  stop(reason?: string): Promise<void>
  readonly stopped: Promise<void>
}

/**
 * When the relay hands freed native memory back: in each of the 3 intervals of 5 s after one above 30% CPU (a burst of
 * handshakes) that stays below 20%. Measured with bench/relay-heap.ts (docs/performance.md, relay section).
 */
const RELAY_TRIM: IdleTrimOptions = { intervalMs: 5_000, busyShare: 0.3, quietShare: 0.2, quietTicks: 3 }

/** relay.json with the flags on top. */
export function mergeRelayInput(file: RelayConfigInput, flags: RelayConfigInput = {}): RelayConfigInput {
  const out: RelayConfigInput = { ...file, ...flags }
  if (file.limits !== undefined || flags.limits !== undefined) out.limits = { ...file.limits, ...flags.limits }
  if (flags.ws !== undefined) out.ws = { ...file.ws, ...flags.ws }
  if (flags.routing !== undefined) out.routing = { ...file.routing, ...flags.routing }
  if (flags.web !== undefined) out.web = { ...file.web, ...flags.web }
  if (flags.discovery !== undefined) out.discovery = { ...file.discovery, ...flags.discovery }
  if (file.allow !== undefined || flags.allow !== undefined) out.allow = [...(file.allow ?? []), ...(flags.allow ?? [])]
  return out
}

function runningError(home: RelayHome, err: WarrenError): WarrenError {
  const pid = err.details?.pid
  return new WarrenError(
    'ERR_DAEMON_RUNNING',
    `a Warren relay${pid === undefined ? '' : ` (pid ${pid})`} is already running for ${home.dir}`,
    {
      hint: `Stop it with Ctrl-C or \`kill ${pid ?? '<pid>'}\`, or give this relay another home with --home or WARREN_RELAY_HOME.`,
      details: { home: home.dir, ...(pid === undefined ? {} : { pid }) },
    },
  )
}

export async function runRelayDaemon(opts: RelayDaemonOptions = {}): Promise<RelayDaemon> {
  const home = typeof opts.home === 'object' ? opts.home : resolveRelayHome(opts.home)
  const log: Logger = opts.log ?? (() => {})
  const file = await readRelayConfigFile(home.config)
  const config = validateRelayConfig(
    mergeRelayInput(file, opts.overrides),
    opts.overrides === undefined ? home.config : `${home.config} with the command-line flags`,
  )
  const { key, created } = await loadOrCreateRelayKey(home)
  if (created) log('info', `created a relay key at ${home.key} (mode 0600)`)
  const socket = relaySocketPath(home, config.api.socket)
  const pid = await acquirePidFile(home.pid, home.dir).catch((err: unknown) => {
    throw isWarrenError(err, 'ERR_DAEMON_RUNNING') ? runningError(home, err) : err
  })

  let relay: Relay | undefined
  let api: ApiServer | undefined
  let web: RelayWeb | undefined
  let metrics: RelayMetricsServer | undefined
  try {
    relay = await startRelay({ privateKey: key, config, log, skipUnheardEvents: true })
    web = await startRelayWeb(config, relay, log)
    let requestStop: () => void = () => {}
    const running = relay
    let reloading: Promise<RelayReloadResult> | undefined
    const reload = (): Promise<RelayReloadResult> => {
      reloading ??= (async () => {
        const next = validateRelayConfig(
          mergeRelayInput(await readRelayConfigFile(home.config), opts.overrides),
          opts.overrides === undefined ? home.config : `${home.config} with the command-line flags`,
        )
        const restartNeeded = running.reload(next)
        const result: RelayReloadResult = {
          reloaded: true,
          config: home.config,
          allow: next.allow.length,
          tokens: next.tokens.length,
          private: next.private,
          limits: next.limits,
          restartNeeded,
        }
        log(
          'info',
          `reloaded ${home.config}: ${result.allow} allowed node(s), ${result.tokens} token(s), ` +
            `${result.private ? 'private' : 'public'}, bounded ${next.limits.dataBytes} bytes and ${next.limits.durationSec} s`,
        )
        if (restartNeeded.length > 0) {
          log('warn', `${restartNeeded.join(', ')} changed in ${home.config}: restart the relay to apply`)
        }
        return result
      })().finally(() => {
        reloading = undefined
      })
      return reloading
    }
    api = await ApiServer.listen(
      socket,
      {
        call: async (method) => {
          if (method === 'relay.status') {
            return { ...running.status(), web: web === undefined ? null : { url: web.url, local: web.local } }
          }
          if (method === 'relay.reload') return reload()
          if (method === 'relay.stop') {
            setImmediate(() => requestStop())
            return { stopping: true, pid: process.pid }
          }
          throw new WarrenError('ERR_API', `the relay API has no method "${method}"`, {
            hint: 'The relay answers relay.status, relay.reload and relay.stop.',
          })
        },
        openStream: async (_socket: Socket) => {
          throw new WarrenError('ERR_API', 'the relay API carries no streams', {
            hint: 'Open service streams through a node (`warren up`), not through a relay.',
          })
        },
      },
      { home: home.dir, log: (m) => log('info', m) },
    ).catch((err: unknown) => {
      throw isWarrenError(err, 'ERR_DAEMON_RUNNING') ? runningError(home, err) : err
    })
    if (config.metrics !== undefined) {
      metrics = await startRelayMetricsServer(
        config.metrics.listen,
        createRelayMetrics(() => running.status()),
      )
      log('info', `Prometheus metrics on http://${metrics.listen}/metrics`)
    }
    log('info', `relay ${running.peerId} ready; API on ${socket}`)

    const server = api
    const page = web
    const scraped = metrics
    const { stop, stopped } = stopSequence('relay', log, [
      ['closing the API', () => server.close()],
      ['closing the web app', async () => page?.close()],
      ['closing the metrics', async () => scraped?.close()],
      ['stopping the relay', () => running.stop()],
      ['removing the pid file', () => pid.release()],
    ])
    requestStop = () => void stop('asked over the API')
    // native memory freed by bursts of handshakes goes back to the system (idle-trim.ts); thresholds for a relay, whose
    // thousands of idle clients' pings keep it above the node daemon's "quiet" (1% CPU) for good
    const trim = startIdleTrim({
      ...RELAY_TRIM,
      afterStart: true,
      onTrim: (_released, report) => log('debug', describeTrim(report)),
    })
    void stopped.then(() => trim.stop())
    // once connections came or went, the V8 heap they are scattered over is compacted (heap-compact.ts);
    // WARREN_BENCH_RELAY_NO_COMPACT=1 leaves it as V8 keeps it, only for bench/relay.ts's `default-heap` variant
    const compaction =
      process.env.WARREN_BENCH_RELAY_NO_COMPACT === '1'
        ? undefined
        : startHeapCompaction(running.libp2p, {
            after: () => void trimMalloc(),
            // parking lets go of a connection's objects: that moves the heap as much as a connection closing
            count: () => running.libp2p.getConnections().length + parkingCounts().parked,
          })
    void stopped.then(() => compaction?.stop())
    return {
      home,
      socket,
      config,
      relay: running,
      web,
      metrics: metrics?.listen,
      createdKey: created,
      reload,
      stop,
      stopped,
    }
  } catch (err) {
    await api?.close().catch(() => {})
    await web?.close().catch(() => {})
    await metrics?.close().catch(() => {})
    await relay?.stop().catch(() => {})
    await pid.release()
    throw err
  }
}
