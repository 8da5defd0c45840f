/**
 * The outgoing side of service streams for a {@link WarrenNode}: connect to a node, send the service request, count
 * the stream in {@link StreamCounters} once the host answered (a refusal counted as never opened), pipe a local
 * socket through it, or check that a service answers.
 */
import type { Duplex } from 'node:stream'
import type { Connection, Stream } from '@libp2p/interface'
import { checkService } from '../access/forward-check.ts'
import type { Config } from '../config/schema.ts'
import { isWarrenError } from '../errors.ts'
import type { ResolvedNode } from '../identity/address-book.ts'
import type { Logger } from '../log.ts'
import { abortLocal, describePipeEnd, type PipeResult, pipeStream } from '../p2p/pipe.ts'
import { type OpenServiceOptions, startServiceStream } from '../services/dial.ts'
import { countStream, type StreamCounters } from '../services/stream-counters.ts'
import type { ConnectOptions } from './dial/dialer.ts'

/** What {@link OutgoingServices} needs of its node. */
export interface OutgoingServicesDeps {
  connect(node: string | ResolvedNode, opts: ConnectOptions): Promise<Connection>
  counters: StreamCounters
  selfId: string
  /** The current `limits` (they change on `warren reload`). */
  limits(): Config['limits']
  log: Logger
}

/** Opens, pipes and checks service streams to other nodes; see the methods of the same names on WarrenNode. */
export class OutgoingServices {
  readonly #deps: OutgoingServicesDeps

  constructor(deps: OutgoingServicesDeps) {
    this.#deps = deps
  }

  /** A service stream whose host answered OK. */
  async open(node: string | ResolvedNode, service: string, opts: ConnectOptions & { port?: number }): Promise<Stream> {
    const { stream, answer } = await this.#start(node, service, opts)
    await answer
    return stream
  }

  /**
   * Opens a service stream and sends its request without waiting for the host's answer; `answer` settles once
   * the host answered, the stream counted from then on (a refusal counted as never opened, and rejected with it).
   */
  async #start(
    node: string | ResolvedNode,
    service: string,
    opts: ConnectOptions & { port?: number },
  ): Promise<{ stream: Stream; answer: Promise<void> }> {
    const counters = this.#deps.counters
    const peerOf = (): string => (typeof node === 'string' ? node : node.id.toString())
    const dialStart = Date.now()
    let conn: Connection
    try {
      conn = await this.#deps.connect(node, opts)
    } catch (err) {
      counters.dialed(peerOf(), Date.now() - dialStart, false)
      counters.never({ direction: 'outgoing', service, peer: peerOf() }, 'failed', (err as Error).message)
      throw err
    }
    const peer = conn.remotePeer.toString()
    const dialMs = Date.now() - dialStart
    const streamOpts: OpenServiceOptions = {
      selfId: this.#deps.selfId,
      timeoutMs: this.#deps.limits().connectTimeoutMs + 10_000,
    }
    if (opts.signal !== undefined) streamOpts.signal = opts.signal
    if (opts.port !== undefined) streamOpts.port = opts.port
    const refused = (err: unknown): never => {
      const e = err as Error & { code?: string }
      const cause =
        e.code === 'ERR_TARGET_UNREACHABLE' ? 'unreachable' : e.code === 'ERR_STREAM_ABORTED' ? 'failed' : 'refused'
      counters.never({ direction: 'outgoing', service, peer }, cause, e.message)
      throw err
    }
    const pending = await startServiceStream(conn, service, streamOpts).catch(refused)
    // after this turn's writes, which carry the new stream (they leave in a setImmediate queued before this one)
    setImmediate(() => counters.dialed(peer, dialMs, true))
    const answer = pending.answer.then(() => {
      countStream(
        pending.stream,
        counters,
        { direction: 'outgoing', service, peer },
        {
          ...(opts.port === undefined ? {} : { port: opts.port }),
          sentEarly: pending.sentEarly(),
        },
      )
    }, refused)
    answer.catch(() => {}) // the caller may stop before it reads the answer
    return { stream: pending.stream, answer }
  }

  /** Pipes `local` through a service stream, its first bytes sent with the request; `local` is reset on a refusal. */
  async pipe(local: Duplex, node: string, service: string, opts: { addrs?: string[] }): Promise<PipeResult> {
    let pending: { stream: Stream; answer: Promise<void> }
    try {
      pending = await this.#start(node, service, opts)
    } catch (err) {
      abortLocal(local, err as Error)
      throw err
    }
    const res = await pipeStream(pending.stream, local, { ready: pending.answer })
    if (res.error !== undefined) {
      // a refusal ends the pipe too, by the stream's abort (in a write waiting for room, before the answer's
      // rejection got here): the refusal says why; the answer settles at once, its stream being closed by now
      const refusal = await pending.answer.then(
        () => undefined,
        (err: Error) => err,
      )
      if (isWarrenError(refusal) && refusal.code !== 'ERR_STREAM_ABORTED') throw refusal
    }
    this.#deps.log(res.error === undefined ? 'debug' : 'warn', describePipeEnd(`forward to ${node}/${service}`, res))
    return res
  }

  /** Opens one service stream and closes it once the host answered OK, within 2 × dialTimeoutMs + connectTimeoutMs. */
  check(node: string, service: string, opts: { addrs?: string[] }): Promise<void> {
    const { dialTimeoutMs, connectTimeoutMs } = this.#deps.limits()
    return checkService((n, s, o) => this.open(n, s, o), node, service, {
      ...opts,
      timeoutMs: 2 * dialTimeoutMs + connectTimeoutMs,
    })
  }
}
