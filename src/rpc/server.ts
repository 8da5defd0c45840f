/**
 * The answering side of `/warren/rpc/1.0.0`: every inbound RPC stream is read message by message; each request is
 * checked (shape, method, who may call it), run with a time-out, and answered on the same stream. Requests on one
 * stream run at once (up to {@link MAX_IN_FLIGHT}; then the stream is paused), so a slow method does not hold up a
 * quick one behind it. A message over the size limit is answered with TOO_LARGE and skipped; the stream goes on.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { isWarrenError, WarrenError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import type { RpcMethods } from './methods.ts'
import {
  encodeMessage,
  MAX_RPC_MESSAGE,
  type Parsed,
  parseRequests,
  RPC_PROTOCOL,
  RPC_STREAMS_PER_CONNECTION,
  RpcCode,
  type RpcErrorObject,
  type RpcFrameError,
  type RpcId,
  type RpcRequest,
  type RpcResponse,
  takeMessage,
} from './wire.ts'

/** Requests of one stream running at once before the stream is paused. */
export const MAX_IN_FLIGHT = 32

export interface RpcServerOptions {
  /** Largest request and answer, bytes (default 1 MiB). */
  maxMessageBytes?: number
  /** Time a method has to answer, ms (default 30 s). */
  timeoutMs?: number
  /** RPC streams a connection may have open at once (default {@link RPC_STREAMS_PER_CONNECTION}). */
  maxStreamsPerConnection?: number
  log?: Logger
}

/** The JSON-RPC error object for a failure of a handler. */
export function errorObject(err: unknown): RpcErrorObject {
  if (isWarrenError(err)) {
    const code =
      err.code === 'ERR_RPC_BAD_PARAMS'
        ? RpcCode.INVALID_PARAMS
        : err.code === 'ERR_TIMEOUT'
          ? RpcCode.TIMEOUT
          : RpcCode.WARREN_ERROR
    return { code, message: err.message, data: err.toJSON() }
  }
  return { code: RpcCode.INTERNAL_ERROR, message: 'the method failed' }
}

export class RpcServer {
  readonly #node: WarrenLibp2p
  readonly #methods: RpcMethods
  readonly #max: number
  readonly #timeoutMs: number
  readonly #maxStreams: number
  readonly #log: Logger
  readonly #open = new Set<Stream>()

  constructor(node: WarrenLibp2p, methods: RpcMethods, opts: RpcServerOptions = {}) {
    this.#node = node
    this.#methods = methods
    this.#max = opts.maxMessageBytes ?? MAX_RPC_MESSAGE
    this.#timeoutMs = opts.timeoutMs ?? 30_000
    this.#maxStreams = opts.maxStreamsPerConnection ?? RPC_STREAMS_PER_CONNECTION
    this.#log = opts.log ?? (() => {})
  }

  async start(): Promise<void> {
    await this.#node.handle(RPC_PROTOCOL, (stream, conn) => this.#serve(stream, conn), {
      maxInboundStreams: this.#maxStreams,
      runOnLimitedConnection: true, // a node behind a bounded relay is still asked
    })
  }

  async stop(): Promise<void> {
    await this.#node.unhandle(RPC_PROTOCOL)
    for (const s of this.#open) s.abort(new Error('the node is stopping'))
    this.#open.clear()
  }

  #serve(stream: Stream, conn: Connection): void {
    this.#open.add(stream)
    const caller = conn.remotePeer.toString()
    const buf = new Uint8ArrayList()
    const gone = new AbortController()
    let skip = 0
    let inFlight = 0
    // answers the caller does not take: no request is read until they have gone out, so they cannot pile up
    let unsent = false
    const paceReading = (): void => {
      if (stream.readStatus === 'closing' || stream.readStatus === 'closed') return
      const hold = unsent || inFlight >= MAX_IN_FLIGHT
      if (hold && stream.readStatus !== 'paused') stream.pause()
      else if (!hold && stream.readStatus === 'paused') stream.resume()
    }
    const send = (msg: unknown): void => {
      if (stream.status !== 'open' || stream.writeStatus !== 'writable') return
      let bytes: Uint8Array
      try {
        bytes = encodeMessage(msg)
      } catch (err) {
        // a handler's result that cannot be JSON (a cycle, a BigInt, nested too deep): that answer becomes an error
        this.#log('warn', `RPC from ${caller}: an answer could not be sent: ${(err as Error).message}`)
        bytes = encodeMessage(Array.isArray(msg) ? msg.map(sendable) : sendable(msg as RpcResponse))
      }
      if (bytes.byteLength > this.#max + 10) {
        const id = Array.isArray(msg) ? null : (msg as RpcResponse).id
        bytes = encodeMessage(fail(id, RpcCode.TOO_LARGE, `the answer of ${bytes.byteLength} bytes is over the limit`))
      }
      if (stream.send(bytes) || unsent) return
      unsent = true
      paceReading()
      stream.addEventListener(
        'drain',
        () => {
          unsent = false
          paceReading()
        },
        { once: true },
      )
    }
    const run = async (body: Uint8Array): Promise<void> => {
      inFlight++
      paceReading()
      try {
        const parsed = parseRequests(body)
        if (Array.isArray(parsed)) {
          const answers = (await Promise.all(parsed.map((p) => this.#answer(p, caller, conn, gone.signal)))).filter(
            (a): a is RpcResponse => a !== undefined,
          )
          if (answers.length > 0) send(answers)
        } else {
          const answer = await this.#answer(parsed, caller, conn, gone.signal)
          if (answer !== undefined) send(answer)
        }
      } finally {
        inFlight--
        paceReading()
      }
    }
    stream.addEventListener('message', (evt) => {
      let data: Uint8Array | Uint8ArrayList = evt.data
      if (skip > 0) {
        const n = Math.min(skip, data.byteLength)
        skip -= n
        if (n === data.byteLength) return
        data = data.subarray(n)
      }
      buf.append(data)
      for (;;) {
        let body: Uint8Array | undefined
        try {
          body = takeMessage(buf, this.#max)
        } catch (err) {
          const e = err as RpcFrameError
          send(fail(null, RpcCode.TOO_LARGE, e.message))
          if (e.length === undefined) {
            stream.abort(new Error(`RPC from ${caller}: ${e.message}`))
            return
          }
          // drop the oversized message as it arrives; the next one is read as usual
          const prefix = prefixLength(buf)
          const have = buf.byteLength - prefix
          if (have >= e.length) buf.consume(prefix + e.length)
          else {
            buf.consume(buf.byteLength)
            skip = e.length - have
          }
          this.#log('debug', `RPC from ${caller}: skipped a message of ${e.length} bytes (over the limit)`)
          continue
        }
        if (body === undefined) return
        void run(body).catch((err: unknown) => this.#log('warn', `RPC from ${caller}: ${(err as Error).message}`))
      }
    })
    stream.addEventListener('remoteCloseWrite', () => {
      // the caller finished sending: close our side once every answer went out
      const waitIdle = (): void => {
        if (inFlight === 0) void stream.close().catch(() => {})
        else setTimeout(waitIdle, 5)
      }
      waitIdle()
    })
    stream.addEventListener('close', () => {
      gone.abort()
      this.#open.delete(stream)
    })
  }

  async #answer(
    p: Parsed<RpcRequest>,
    caller: string,
    conn: Connection,
    gone: AbortSignal,
  ): Promise<RpcResponse | undefined> {
    if (!p.ok) return { jsonrpc: '2.0', id: p.id, error: p.error }
    const req = p.value
    const id = req.id
    const lookup = this.#methods.lookup(req.method, caller)
    if (!lookup.ok) {
      if (id === undefined) return undefined
      return lookup.reason === 'unknown'
        ? fail(id, RpcCode.METHOD_NOT_FOUND, `no method "${req.method}"`)
        : fail(id, RpcCode.NOT_ALLOWED, `this node (${caller}) may not call "${req.method}"`)
    }
    const ctl = new AbortController()
    const signal = AbortSignal.any([ctl.signal, gone])
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new WarrenError('ERR_TIMEOUT', `"${req.method}" did not answer within ${this.#timeoutMs} ms`)
        ctl.abort(e)
        reject(e)
      }, this.#timeoutMs)
    })
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => lookup.handler(req.params, { caller, connection: conn, signal })),
        timeout,
      ])
      return id === undefined ? undefined : { jsonrpc: '2.0', id, result: result ?? null }
    } catch (err) {
      if (!isWarrenError(err)) this.#log('warn', `RPC "${req.method}" from ${caller} failed: ${(err as Error).message}`)
      return id === undefined ? undefined : { jsonrpc: '2.0', id, error: errorObject(err) }
    } finally {
      clearTimeout(timer)
    }
  }
}

/** `answer` itself when it can be sent, else an internal error with its id saying why it cannot. */
function sendable(answer: RpcResponse): RpcResponse {
  try {
    encodeMessage(answer)
    return answer
  } catch (err) {
    return fail(answer.id, RpcCode.INTERNAL_ERROR, `the answer could not be sent: ${(err as Error).message}`)
  }
}

function fail(id: RpcId | undefined, code: number, message: string): RpcResponse {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message } }
}

/** Bytes of the uvarint at the front of `buf` (it was decoded already, so it is complete). */
function prefixLength(buf: Uint8ArrayList): number {
  for (let i = 0; i < Math.min(buf.byteLength, 5); i++) if ((buf.get(i) & 0x80) === 0) return i + 1
  return 5
}
