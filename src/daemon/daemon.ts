/**
 * The daemon's lifecycle: load key and config, claim the home (one daemon per home), start the node, restore
 * what was added at runtime, serve the local API; and on stop, undo all of it in reverse.
 *
 * @example
 * ```ts
 * const daemon = await runDaemon({ home: '/tmp/a', listen: ['/ip4/127.0.0.1/tcp/0'] })
 * process.once('SIGINT', () => void daemon.stop('SIGINT'))
 * await daemon.stopped
 * ```
 */
import { chmod, mkdir } from 'node:fs/promises'
import { LocalPages } from '../access/local-pages.ts'
import { type HomePaths, resolveHome, socketPath } from '../config/home.ts'
import { loadConfig } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { toWarrenError } from '../errors.ts'
import { loadNodeKey } from '../identity/keys.ts'
import { createLogger, type Logger } from '../log.ts'
import type { ReloadResult } from '../node/reload.ts'
import { WarrenNode } from '../node/warren-node.ts'
import { processDescriptors } from '../open-files.ts'
import type { PresetName } from '../p2p/presets.ts'
import { dashboardStatus } from '../ui/dashboard-status.ts'
import { createNodeMetrics, type NodeMetrics } from '../ui/metrics.ts'
import { startUiServer, type UiServer, uiHandler } from '../ui/ui-server.ts'
import { type ServiceUsage, serviceUsage } from '../ui/usage.ts'
import { startAdmission } from './admission.ts'
import { ApiServer } from './api-server.ts'
import { describeTrim, startIdleTrim } from './idle-trim.ts'
import { createApiHandler } from './methods.ts'
import { acquirePidFile } from './pidfile.ts'
import { StateStore } from './state.ts'
import { optimizeSoonerAfter, SOONER_TIERING, TIERING_AFTER_START_MS } from './tiering.ts'

export interface DaemonOptions {
  /** Home directory or resolved paths; default `$WARREN_HOME` or `~/.warren`. */
  home?: string | HomePaths
  /** Overrides config `listen`. */
  listen?: string[]
  preset?: PresetName
  /** Log sink; default: lines on stderr at info level. */
  log?: Logger
  /** Serve the dashboard and Prometheus metrics on this host:port instead of config `metrics.listen` (src/ui). */
  metricsListen?: string
}

export interface Daemon {
  readonly home: HomePaths
  /** The API socket path. */
  readonly socket: string
  readonly node: WarrenNode
  /** Stops everything; safe to call more than once. */
  stop(reason?: string): Promise<void>
  /** Settles once the daemon has stopped (by `stop()` or `daemon.stop` over the API). */
  readonly stopped: Promise<void>
}

async function restore(node: WarrenNode, state: StateStore, log: Logger): Promise<void> {
  for (const [name, svc] of Object.entries(state.state.services)) {
    try {
      node.expose(name, svc, { replace: true })
      log('info', `restored service ${name} → ${svc.target}`)
    } catch (err) {
      log('warn', `could not restore service ${name}: ${toWarrenError(err).message}`)
    }
  }
  for (const f of state.state.forwards) {
    try {
      // checked in the background: the far node may not be reachable yet, and a failure is kept in its status
      await node.addForward(f, { waitForCheck: false }) // the forwarder logs it
    } catch (err) {
      const e = toWarrenError(err)
      log('warn', `could not restore forward ${f.listen} → ${f.node}/${f.service}: ${e.message}`)
    }
  }
}

/** What a reload changed, in words: `services added web; peers; limits maxStreams` or `nothing changed`. */
export function describeReload(r: ReloadResult): string {
  const parts: string[] = []
  for (const [what, names] of Object.entries(r.services)) {
    if (names.length > 0) parts.push(`services ${what} ${names.join(', ')}`)
  }
  if (r.peers) parts.push('peers changed')
  if (r.limits.length > 0) parts.push(`limits ${r.limits.join(', ')}`)
  if (r.portMapping) parts.push('port mapping settings applied')
  return parts.length === 0 ? 'nothing to apply changed' : parts.join('; ')
}

/** Starts a daemon and resolves once it serves the local API. */
export async function runDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const home = typeof opts.home === 'object' ? opts.home : resolveHome(opts.home)
  const log = opts.log ?? createLogger()
  // refuse bad keys and configs before touching anything
  const privateKey = await loadNodeKey(home.key)
  const config = await loadConfig(home.config)
  const socket = socketPath(home, config.api.socket)

  await mkdir(home.dir, { recursive: true, mode: 0o700 })
  await chmod(home.dir, 0o700).catch((err: Error) => log('warn', `cannot make ${home.dir} private: ${err.message}`))
  const pid = await acquirePidFile(home.pid, home.dir)
  if (pid.replacedStale) {
    log('warn', `removed a stale pid file${pid.stalePid === undefined ? '' : ` (pid ${pid.stalePid} is gone)`}`)
  }

  let node: WarrenNode | undefined
  let api: ApiServer | undefined
  let ui: UiServer | undefined
  let metrics: NodeMetrics | undefined
  let usage: ServiceUsage | undefined
  // the dashboard and /metrics on the access port's own origin, warren.localhost:<port> (src/access/local-pages.ts)
  const pages = new LocalPages()
  try {
    const state = await StateStore.open(home.state)
    node = await WarrenNode.start({
      privateKey,
      config,
      log,
      learned: state.state.learned,
      // a daemon is the only libp2p user in its process: the process-wide event patch is safe there
      skipUnheardEvents: true,
      ...(opts.listen ? { listen: opts.listen } : {}),
      ...(opts.preset ? { preset: opts.preset } : {}),
      pages,
    })
    await restore(node, state, log)
    let requestStop: () => void = () => {}
    /** The config the node runs with: the one read at start, then each one a reload applied. */
    let running = config
    /** Reads config.json again and applies it; an invalid one is refused with its field paths, the old one stays. */
    const reload = async (): Promise<ReloadResult> => {
      let next: Config
      try {
        next = await loadConfig(home.config)
        const result = started.reload(next)
        running = next
        log('info', `reloaded ${home.config}: ${describeReload(result)}`)
        if (result.needsRestart.length > 0) {
          log('warn', `changed keys that take effect at the next start: ${result.needsRestart.join(', ')}`)
        }
        return result
      } catch (err) {
        const e = toWarrenError(err)
        log('error', `reload refused, the running config stays: ${e.message}`)
        throw e
      }
    }
    const started = node
    const admission = await startAdmission({ node, state, home, config: () => running, reload: () => reload() })
    api = await ApiServer.listen(
      socket,
      createApiHandler({
        node: started,
        state,
        learned: () => started.learnedAddresses(),
        requestStop: () => requestStop(),
        reload: () => reload(),
        admission,
        log,
      }),
      { home: home.dir, log: (m) => log('info', m) },
    )
    metrics = createNodeMetrics({
      counters: started.streamCounters,
      pathKinds: () => started.peers().flatMap((p) => (p.connected && p.path ? [p.path.kind] : [])),
      openFiles: () => processDescriptors().status(),
    })
    usage = serviceUsage(started.streamCounters)
    const uiSource = { metrics, status: dashboardStatus(started, usage) }
    pages.handler = uiHandler(uiSource)
    const access = started.status().access?.listen
    if (access !== undefined) {
      log(
        'info',
        `dashboard on http://warren.localhost:${access.slice(access.lastIndexOf(':') + 1)}/ (metrics at /metrics)`,
      )
    }
    const uiListen = opts.metricsListen ?? config.metrics?.listen
    if (uiListen !== undefined) {
      ui = await startUiServer(uiListen, uiSource)
      log(
        'info',
        `dashboard and metrics also on http://warren.localhost:${ui.listen.slice(ui.listen.lastIndexOf(':') + 1)}/ (metrics.listen)`,
      )
    }
    const id = started.identity()
    for (const a of id.addrs) log('info', `listening on ${a}`)
    log('info', `node ${id.id}`)
    log('info', `API on ${socket}`)

    let resolveStopped: () => void = () => {}
    const stopped = new Promise<void>((r) => {
      resolveStopped = r
    })
    let stopping: Promise<void> | undefined
    const server = api
    const stop = (reason?: string): Promise<void> => {
      stopping ??= (async () => {
        log('info', `stopping${reason ? ` (${reason})` : ''}`)
        server.stopAccepting()
        await ui?.close()
        pages.handler = undefined
        metrics?.close()
        usage?.close()
        // the node first: its forwards and streams end, and so do the API streams piped to them
        await started.stop().catch((err: Error) => log('warn', `stopping the node: ${err.message}`))
        await server.close().catch((err: Error) => log('warn', `closing the API: ${err.message}`))
        await pid.release()
        log('info', 'stopped')
        resolveStopped()
      })()
      return stopping
    }
    requestStop = () => void stop('asked over the API')
    // SIGHUP reloads config.json, as for other daemons; a refused reload is logged and the daemon keeps running
    const onHup = (): void => void reload().catch(() => {})
    process.on('SIGHUP', onHup)
    void stopped.then(() => process.off('SIGHUP', onHup))
    // the memory a burst of traffic (and the start-up) left goes back to the system once the daemon is quiet
    // (idle-trim.ts): V8's heap
    // compacted first, then malloc_trim. The compaction only with a fixed heap growing factor (bin/warren.js): with
    // V8's own estimate, the next transfers ran under constant major collections (docs/performance.md)
    const trim = startIdleTrim({
      afterStart: true,
      compact: process.execArgv.some((f) => f.startsWith('--heap-growing-percent')),
      onTrim: (_released, report) => log('debug', describeTrim(report)),
    })
    void stopped.then(() => trim.stop())
    // V8 optimizes sooner once the start is over (tiering.ts): not before, where compiling competes with the start
    const tiering = optimizeSoonerAfter(TIERING_AFTER_START_MS, process.execArgv, () =>
      log('debug', `V8 optimizes sooner from now on (${SOONER_TIERING.join(' ')})`),
    )
    void stopped.then(() => tiering.stop())
    log('info', 'ready')
    return { home, socket, node: started, stop, stopped }
  } catch (err) {
    await api?.close().catch(() => {})
    await ui?.close().catch(() => {})
    metrics?.close()
    usage?.close()
    await node?.stop().catch(() => {})
    await pid.release()
    throw err
  }
}
