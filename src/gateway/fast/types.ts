/**
 * What the parts of the gateway's fast path share: its options and its pool of service streams. FastPath
 * (fast-path.ts) holds both; a client connection (connection.ts) reaches them through {@link FastPathContext}.
 */
import type { Socket } from 'node:net'
import type { RequestHead } from '../../http/http1.ts'
import type { Logger } from '../../log.ts'
import type { GatewayBackend } from '../backend.ts'
import type { ForwardSpec, Gateway } from '../gateway.ts'
import type { UpstreamPool } from './upstreams.ts'

export interface FastPathOptions {
  backend: GatewayBackend
  gateway: Gateway
  tld: string
  maxHeaderBytes: number
  responseTimeoutMs: number
  openTimeoutMs: number
  maxStreamsPerPeer: number
  /** Where a request goes; undefined sends it to the full path (which answers refusals and redirects). */
  route(head: RequestHead): ForwardSpec | undefined
  /** Gives the connection to the full path, `buffered` (unparsed bytes) first. */
  handOver(socket: Socket, buffered: Buffer | undefined): void
  /** A request head arrived (ends the access port's head deadline). */
  headArrived(socket: Socket): void
  /** A keep-alive connection waits for its next request head (starts the access port's head deadline). */
  awaitingHead?(socket: Socket): void
  /** Exchanges that end abnormally are logged here at `warn`. */
  log?: Logger
}

/** What a client connection uses of its fast path: the options and the pool of idle service streams. */
export interface FastPathContext {
  readonly opts: FastPathOptions
  readonly pool: UpstreamPool
}
