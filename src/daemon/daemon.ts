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
import { type HomePaths, resolveHome, socketPath } from '../config/home.ts'
import { loadConfig } from '../config/load.ts'
import { toWarrenError } from '../errors.ts'
import { loadNodeKey } from '../identity/keys.ts'
import { createLogger, type Logger } from '../log.ts'
import { WarrenNode } from '../node/warren-node.ts'
import type { PresetName } from '../p2p/presets.ts'
import { ApiServer } from './api-server.ts'
import { createApiHandler } from './methods.ts'
import { acquirePidFile } from './pidfile.ts'
import { StateStore } from './state.ts'

export interface DaemonOptions {
  /** Home directory or resolved paths; default `$WARREN_HOME` or `~/.warren`. */
  home?: string | HomePaths
  /** Overrides config `listen`. */
  listen?: string[]
  preset?: PresetName
  /** Log sink; default: lines on stderr at info level. */
  log?: Logger
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
    })
    await restore(node, state, log)
    let requestStop: () => void = () => {}
    const started = node
    api = await ApiServer.listen(
      socket,
      createApiHandler({
        node: started,
        state,
        learned: () => started.learnedAddresses(),
        requestStop: () => requestStop(),
        log,
      }),
      { home: home.dir, log: (m) => log('info', m) },
    )
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
    log('info', 'ready')
    return { home, socket, node: started, stop, stopped }
  } catch (err) {
    await api?.close().catch(() => {})
    await node?.stop().catch(() => {})
    await pid.release()
    throw err
  }
}
