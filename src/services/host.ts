/**
 * The host side of `/warren/service/1.0.0` (and `/x/<service>` for Kubo): read the header, check access,
 * connect to the TCP target with a time-out, answer one status, then pipe bytes both ways. The destination port a
 * request carries (the port the client connected to, header tag 1) is logged with the stream; the service's target
 * decides where the bytes go.
 */

import { connect, type Socket } from 'node:net'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { formatTarget, type TcpTarget } from '../config/target.ts'
import type { Logger, LogLevel } from '../log.ts'
import { LogThrottle } from '../log-throttle.ts'
import { type DescriptorBudget, processDescriptors } from '../open-files.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { describePipeEnd, pipeStream, reasonOf } from '../p2p/pipe.ts'
import { FrameTimeoutError, readFrame } from './frame-io.ts'
import {
  decodeRequest,
  encodeResponse,
  FrameError,
  HEADER_VERSION,
  SERVICE_PROTOCOL,
  Status,
  type StatusCode,
} from './header.ts'
import { serveHttpStream } from './http-host.ts'
import { StreamBudgets } from './limiter.ts'
import type { ServiceRegistry } from './registry.ts'
import type { CountedStream, StreamCounters, StreamEndCause } from './stream-counters.ts'

export const KUBO_PREFIX = '/x/'

/** The service label of streams refused before they named a service this node offers. */
export const UNNAMED = '(unknown)'

export interface HostOptions {
  connectTimeoutMs: number
  /** Streams of named peers (in `peers` or an allow list), in total and each. */
  maxStreams: number
  maxStreamsPerPeer: number
  /** Streams of every other node (public services only), in total and each. */
  maxPublicStreams: number
  maxPublicStreamsPerPeer: number
  /**
   * Service streams per connection and direction that libp2p lets through to the host (default:
   * {@link streamsPerConnection} of these limits). Inbound, libp2p admits {@link REFUSAL_MARGIN} more, so that a
   * stream past the budgets gets an OVERLOADED answer rather than a reset.
   */
  maxStreamsPerConnection?: number
  headerTimeoutMs?: number
  log?: Logger
  /** Where accepted, refused and ended streams are counted (`incoming`). */
  counters?: StreamCounters
  /** One descriptor per target connection, under the open-file limit (default: the process's). */
  descriptors?: DescriptorBudget
}

/** Inbound service streams per connection beyond the ceiling that libp2p still hands over, to be refused. */
export const REFUSAL_MARGIN = 64

/**
 * The service streams one connection can need at once, each way: the larger per-node budget (a connection joins
 * two nodes). A Warren node gives it to libp2p as its per-connection ceiling (Yamux, and the protocol handler's
 * inbound and outbound caps), so raising the limits raises the ceiling and nothing else caps it.
 */
export function streamsPerConnection(
  limits: Pick<HostOptions, 'maxStreamsPerPeer' | 'maxPublicStreamsPerPeer'>,
): number {
  return Math.max(limits.maxStreamsPerPeer, limits.maxPublicStreamsPerPeer, 1)
}

/** Connects to a TCP target, or rejects with the target's error (ECONNREFUSED …) or a time-out. */
export function connectTarget(target: TcpTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      family: target.family,
      allowHalfOpen: true,
      noDelay: true,
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`connect to ${formatTarget(target)} timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.off('error', onError)
      resolve(socket)
    })
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      reject(new Error(`connect to ${formatTarget(target)} failed: ${err.code ?? err.message}`))
    }
    socket.once('error', onError)
  })
}

/** A stream past the access check, for revocation. */
interface OpenStream {
  service: string
  peer: PeerId
  /** The target it was admitted to. */
  target: string
  /** Warren protocol (true) or `/x/<service>` (false). */
  withStatus: boolean
  /** Set once the stream was reset because the rules no longer admit it. */
  revoked?: Error
  /** Its counters once the target answered. */
  counted?: CountedStream
}

/** The cause of a piped stream's end, for the counters. */
function endCause(rec: OpenStream, error: Error | undefined): StreamEndCause {
  if (rec.revoked !== undefined) return 'revoked'
  if (error === undefined) return 'ok'
  return error.name === 'StreamResetError' ? 'reset' : 'error'
}

/**
 * Serves a stream without handing libp2p a promise that lasts as long as the stream: libp2p keeps its own
 * negotiation state (async frames, the negotiation time-out signal, the middleware list) until the handler's promise
 * settles, about 1.5 KiB per open stream. An error ends the stream as libp2p would end it.
 */
function detach(stream: Stream, serving: Promise<void>): void {
  serving.catch((err: Error) => stream.abort(err))
}

export class ServiceHost {
  readonly #node: WarrenLibp2p
  readonly #registry: ServiceRegistry
  #opts: HostOptions
  readonly #ceiling: number
  readonly #budgets: StreamBudgets
  readonly #kubo = new Set<string>()
  readonly #open = new Map<Stream, OpenStream>()
  readonly #unsubscribe: () => void
  #total = 0
  readonly #fds: DescriptorBudget
  /** Refusals at the open-file limit, logged at warn: one line, then a count once a minute. */
  readonly #fileLimit: LogThrottle
  /** Lines held by {@link #logSoon}, in order. */
  #soon: [LogLevel, string][] = []

  constructor(node: WarrenLibp2p, registry: ServiceRegistry, opts: HostOptions) {
    this.#node = node
    this.#registry = registry
    this.#opts = opts
    this.#ceiling = opts.maxStreamsPerConnection ?? streamsPerConnection(opts)
    this.#budgets = new StreamBudgets(opts)
    this.#fds = opts.descriptors ?? processDescriptors()
    this.#fileLimit = new LogThrottle({ intervalMs: 60_000, emit: (line) => this.#log('warn', line) })
    // a removed service, a peer dropped from an allow list: their open streams are reset at once
    this.#unsubscribe = registry.onChange(() => this.revoke())
  }

  async start(): Promise<void> {
    await this.#node.handle(SERVICE_PROTOCOL, (stream, conn) => detach(stream, this.#onServiceStream(stream, conn)), {
      maxInboundStreams: this.#ceiling + REFUSAL_MARGIN,
      // libp2p caps outbound streams per protocol at 64 unless the handler says otherwise; forwards need many
      maxOutboundStreams: this.#ceiling,
      runOnLimitedConnection: true, // relayed connections through a bounded relay
    })
    await this.syncKubo()
  }

  /** Registers `/x/<name>` for services with `kubo: true` and drops the rest. Call after registry changes. */
  async syncKubo(): Promise<void> {
    const want = new Set(
      this.#registry
        .list()
        .filter((s) => s.kubo)
        .map((s) => KUBO_PREFIX + s.name),
    )
    for (const p of this.#kubo) {
      if (!want.has(p)) {
        await this.#node.unhandle(p)
        this.#kubo.delete(p)
      }
    }
    for (const p of want) {
      if (this.#kubo.has(p)) continue
      const name = p.slice(KUBO_PREFIX.length)
      await this.#node.handle(p, (stream, conn) => detach(stream, this.#onKuboStream(name, stream, conn)), {
        maxInboundStreams: this.#ceiling + REFUSAL_MARGIN,
        runOnLimitedConnection: true, // relayed connections through a bounded relay
      })
      this.#kubo.add(p)
    }
  }

  async stop(): Promise<void> {
    this.#flushSoon()
    this.#fileLimit.close()
    await this.#node.unhandle([SERVICE_PROTOCOL, ...this.#kubo])
    this.#kubo.clear()
    this.#unsubscribe()
    for (const s of this.#open.keys()) s.abort(new Error('node is shutting down'))
  }

  /**
   * New stream limits and target connect time (config reload). The per-connection ceiling libp2p enforces stays
   * what it was at start, so higher per-peer limits take effect up to it.
   */
  setLimits(
    limits: Pick<
      HostOptions,
      'connectTimeoutMs' | 'maxStreams' | 'maxStreamsPerPeer' | 'maxPublicStreams' | 'maxPublicStreamsPerPeer'
    >,
  ): void {
    this.#opts = { ...this.#opts, ...limits }
    this.#budgets.setLimits(limits)
  }

  stats(): { active: number; total: number } {
    return { active: this.#open.size, total: this.#total }
  }

  /**
   * Checks every open stream against the rules as they are now and resets those they no longer admit: service
   * removed, peer no longer allowed, target changed, `/x/` streams turned off. The registry calls this on every
   * change. Returns how many streams were reset.
   */
  revoke(): number {
    let n = 0
    for (const [stream, rec] of this.#open) {
      if (rec.revoked !== undefined) continue
      const why = this.#noLongerAdmitted(rec)
      if (why === undefined) continue
      rec.revoked = new Error(`access revoked: ${why}`)
      this.#log('warn', `access revoked: reset the stream of ${rec.peer} to "${rec.service}": ${why}`)
      stream.abort(rec.revoked)
      n++
    }
    return n
  }

  #noLongerAdmitted(rec: OpenStream): string | undefined {
    const decision = this.#registry.check(rec.service, rec.peer)
    if (!decision.ok) {
      return decision.reason === 'unknown'
        ? `service "${rec.service}" is no longer exposed`
        : `node ${rec.peer} is no longer allowed to use "${rec.service}"`
    }
    if (decision.entry.target !== rec.target) return `the target of "${rec.service}" changed`
    if (!rec.withStatus && !decision.entry.kubo) return `"${rec.service}" is no longer open to /x/ streams`
    return undefined
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
    this.#flushSoon()
    this.#opts.log?.(level, msg)
  }

  /**
   * Logs `msg` once the current event-loop turn's socket writes have left (they flush in `setImmediate`, queued
   * before this), so that writing the line does not delay the bytes of a stream being set up. Every other line of
   * the host, and a stream's end, writes the held lines first: the order of lines is kept.
   */
  #logSoon(level: LogLevel, msg: string): void {
    if (this.#opts.log === undefined) return
    this.#soon.push([level, msg])
    if (this.#soon.length === 1) setImmediate(() => this.#flushSoon())
  }

  #flushSoon(): void {
    if (this.#soon.length === 0) return
    const lines = this.#soon
    this.#soon = []
    for (const [level, msg] of lines) this.#opts.log?.(level, msg)
  }

  async #refuse(stream: Stream, status: StatusCode, reason: string): Promise<void> {
    try {
      stream.send(encodeResponse({ status, reason }))
      await stream.close({ signal: AbortSignal.timeout(5_000) })
    } catch {
      stream.abort(new Error(reason))
    }
  }

  async #onServiceStream(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer
    let service: string
    let port: number | undefined
    try {
      const req = decodeRequest(await readFrame(stream, this.#opts.headerTimeoutMs ?? 10_000))
      if (req.version !== HEADER_VERSION) {
        return this.#refuse(
          stream,
          Status.BAD_REQUEST,
          `header version ${req.version} is not supported (this node speaks ${HEADER_VERSION})`,
        )
      }
      service = req.service
      port = req.port
      this.#log(
        'debug',
        `service stream from ${peer}: "${service}"${port === undefined ? ', no destination port' : `, destination port ${port}`}`,
      )
    } catch (err) {
      this.#log('warn', `service stream from ${peer}: ${(err as Error).message}`)
      this.#opts.counters?.never(
        { direction: 'incoming', service: UNNAMED, peer: peer.toString() },
        'refused',
        (err as Error).message,
      )
      if (err instanceof FrameError || err instanceof FrameTimeoutError)
        return this.#refuse(stream, Status.BAD_REQUEST, (err as Error).message)
      stream.abort(err as Error)
      return
    }
    await this.#serve(service, stream, peer, true, port)
  }

  async #onKuboStream(name: string, stream: Stream, conn: Connection): Promise<void> {
    await this.#serve(name, stream, conn.remotePeer, false)
  }

  /** Access check → limits → target connect → status (Warren protocol only) → pipe. */
  async #serve(service: string, stream: Stream, peer: PeerId, withStatus: boolean, port?: number): Promise<void> {
    // a name this node does not offer is counted as "(unknown)": peers choose it, so it must not grow the tallies
    const known = this.#registry.get(service) !== undefined
    const labels = { direction: 'incoming' as const, service: known ? service : UNNAMED, peer: peer.toString() }
    const refuse = (status: StatusCode, reason: string): Promise<void> => {
      this.#log('info', `incoming stream refused: ${peer} → ${service}: ${reason}`)
      this.#opts.counters?.never(labels, status === Status.TARGET_UNREACHABLE ? 'unreachable' : 'refused', reason)
      if (withStatus) return this.#refuse(stream, status, reason)
      stream.abort(new Error(reason))
      return Promise.resolve()
    }
    const decision = this.#registry.check(service, peer)
    if (!decision.ok) {
      return decision.reason === 'unknown'
        ? refuse(Status.UNKNOWN_SERVICE, `this node has no service "${service}"`)
        : refuse(Status.NOT_AUTHORIZED, `node ${peer} is not allowed to use "${service}"`)
    }
    if (!withStatus && !decision.entry.kubo)
      return refuse(Status.UNKNOWN_SERVICE, `"${service}" is not open to /x/ streams`)
    const release = this.#budgets.acquire(peer.toString(), this.#registry.isNamed(peer))
    if (typeof release === 'string') return refuse(Status.OVERLOADED, release)
    const rec: OpenStream = { service, peer, target: decision.entry.target, withStatus }
    this.#open.set(stream, rec)
    this.#total++
    try {
      const giveBack = this.#fds.take()
      if (giveBack === undefined) {
        // logged at warn, but once a minute with a count: a burst of streams would otherwise log a line each
        const why = `this node is at its open-file limit: ${this.#fds.describe()}`
        this.#fileLimit.log(
          'file-limit',
          `incoming stream refused: ${peer} → ${service}: ${why}`,
          'incoming streams refused at the open-file limit',
        )
        this.#opts.counters?.never(labels, 'refused', why)
        if (withStatus) return await this.#refuse(stream, Status.OVERLOADED, why)
        stream.abort(new Error(why))
        return
      }
      let socket: Socket
      try {
        socket = await connectTarget(decision.entry.tcp, this.#opts.connectTimeoutMs)
      } catch (err) {
        giveBack()
        if (rec.revoked !== undefined) return
        return await refuse(Status.TARGET_UNREACHABLE, (err as Error).message)
      }
      socket.once('close', giveBack)
      if (rec.revoked !== undefined) {
        // revoked while the target connect was under way: the stream is reset, the target gets an RST
        socket.resetAndDestroy()
        return
      }
      if (stream.status !== 'open') {
        // reset, or its connection lost, while the target connect was under way: nothing can reach the target
        // through it any more, so the target gets an RST rather than a connection that nobody ever ends
        socket.resetAndDestroy()
        const why = `the stream was ${stream.status} before the connect to the target completed`
        this.#log('info', `incoming stream ended: ${peer} → ${service}: ${why}`)
        this.#opts.counters?.never(labels, 'failed', why)
        return
      }
      try {
        if (withStatus) stream.send(encodeResponse({ status: Status.OK, reason: '' }))
      } catch (err) {
        socket.resetAndDestroy()
        throw err
      }
      const { tcp, type } = decision.entry
      // the bytes the peer sent with its request go to the target now; the bookkeeping below comes after them
      const piped = type === 'http' ? undefined : pipeStream(stream, socket)
      // bytes in came from the peer and went to the target; bytes out came from the target
      const counted = this.#opts.counters?.start(
        labels,
        () => ({ bytesIn: socket.bytesWritten, bytesOut: socket.bytesRead }),
        port === undefined ? {} : { port },
      )
      if (counted !== undefined) rec.counted = counted
      const dialled = port === undefined ? '' : `, destination port ${port}`
      this.#logSoon(
        'info',
        `incoming stream accepted: ${peer} → ${service} (${formatTarget(decision.entry.tcp)}${dialled})`,
      )
      if (piped === undefined) {
        // "type": "http": a reverse proxy that tells the app who is calling (X-Warren-Peer)
        await serveHttpStream(stream, socket, {
          peer: peer.toString(),
          service,
          targetName: formatTarget(tcp),
          connect: () => connectTarget(tcp, this.#opts.connectTimeoutMs),
        })
        this.#flushSoon()
        rec.counted?.end(endCause(rec, undefined))
        return
      }
      const res = await piped
      if (res.error !== undefined) this.#log('debug', describePipeEnd(`service ${service} for ${peer}`, res))
      const cause = endCause(rec, res.error)
      // the rules may have changed while it ran (revoke() sets this)
      const revoked = (rec as OpenStream).revoked
      const reason = revoked?.message ?? (res.error === undefined ? undefined : reasonOf(res.error))
      this.#flushSoon()
      rec.counted?.end(cause, { bytesIn: res.bytesIn, bytesOut: res.bytesOut }, reason)
    } catch (err) {
      this.#flushSoon()
      rec.counted?.end('error', undefined, (err as Error).message)
      throw err
    } finally {
      release()
      this.#open.delete(stream)
    }
  }
}
