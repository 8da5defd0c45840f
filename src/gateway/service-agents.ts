/**
 * A pool of HTTP/1.1 connections per node and service: each is a `/warren/service/1.0.0` stream wrapped in a
 * {@link StreamSocket}, kept alive between requests by Node's `http.Agent`. A new stream is opened only when
 * every pooled one is busy; idle ones are closed after a while (or when the service's `Keep-Alive` hint says so).
 */
import { Agent, type ClientRequestArgs } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import { StreamSocket } from './stream-socket.ts'

export type OpenStream = (node: string, service: string, opts: { signal: AbortSignal }) => Promise<Stream>

export interface ServiceAgentsOptions {
  /** Streams per node and service at most; further requests wait in the agent's queue. */
  maxSockets: number
  /** Idle streams kept per node and service. */
  maxFreeSockets: number
  /** Idle time after which a pooled stream is closed, ms. */
  idleTimeoutMs: number
  /** Time to open a stream (dial + the host's answer), ms. */
  openTimeoutMs: number
}

/** An agent whose connections are service streams to one node's service. */
class ServiceAgent extends Agent {
  readonly #open: OpenStream
  readonly #node: string
  readonly #service: string
  readonly #openTimeoutMs: number

  constructor(open: OpenStream, node: string, service: string, opts: ServiceAgentsOptions) {
    super({
      keepAlive: true,
      maxSockets: opts.maxSockets,
      maxFreeSockets: opts.maxFreeSockets,
      timeout: opts.idleTimeoutMs,
      scheduling: 'lifo',
    })
    this.#open = open
    this.#node = node
    this.#service = service
    this.#openTimeoutMs = opts.openTimeoutMs
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    this.#open(this.#node, this.#service, { signal: AbortSignal.timeout(this.#openTimeoutMs) }).then(
      (stream) => callback?.(null, new StreamSocket(stream)),
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    )
    return undefined
  }
}

export class ServiceAgents {
  readonly #open: OpenStream
  readonly #opts: ServiceAgentsOptions
  readonly #agents = new Map<string, ServiceAgent>()

  constructor(open: OpenStream, opts: ServiceAgentsOptions) {
    this.#open = open
    this.#opts = opts
  }

  /** The agent for `service` on `node` (a canonical node id, so aliases share a pool). */
  agentFor(node: string, service: string): Agent {
    const key = `${node}/${service}`
    let agent = this.#agents.get(key)
    if (agent === undefined) {
      agent = new ServiceAgent(this.#open, node, service, this.#opts)
      this.#agents.set(key, agent)
    }
    return agent
  }

  /** Open streams per pool, for status and tests. */
  stats(): { pools: number; sockets: number; free: number } {
    let sockets = 0
    let free = 0
    for (const a of this.#agents.values()) {
      for (const list of Object.values(a.sockets)) sockets += list?.length ?? 0
      for (const list of Object.values(a.freeSockets)) free += list?.length ?? 0
    }
    return { pools: this.#agents.size, sockets, free }
  }

  destroy(): void {
    for (const a of this.#agents.values()) a.destroy()
    this.#agents.clear()
  }
}
