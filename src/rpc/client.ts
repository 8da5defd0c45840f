/**
 * The calling side of `/warren/rpc/1.0.0`: one call (or one batch) on a new stream of a connection, the answer
 * turned into a result or a WarrenError the user can act on. Streams are cheap on an open connection (no round trip
 * is spent on protocol selection: the protocol id travels with the request).
 */
import type { Connection, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { ERROR_CODES, type ErrorCode, WarrenError } from '../errors.ts'
import { endedAlready } from '../p2p/stream-ended.ts'
import { MAX_JSON_DEPTH } from './json-depth.ts'
import { releaseWhenClosed, takeSlot } from './stream-slots.ts'
import {
  encodeMessage,
  MAX_RPC_MESSAGE,
  parseResponses,
  RPC_PROTOCOL,
  RpcCode,
  type RpcErrorObject,
  type RpcRequest,
  type RpcResponse,
  takeMessage,
} from './wire.ts'

export interface CallOptions {
  /** Time for the answer, ms (default 30 s). */
  timeoutMs?: number
  signal?: AbortSignal
  /** Largest answer accepted, bytes (default 1 MiB). */
  maxMessageBytes?: number
  /** This node's id, quoted in "not allowed" hints. */
  selfId?: string
}

/** The WarrenError for a JSON-RPC error answered by node `peer` to `method`. */
export function remoteError(peer: string, method: string, e: RpcErrorObject, selfId?: string): WarrenError {
  const data = e.data as { code?: unknown; message?: unknown; hint?: unknown } | undefined
  const who = `node ${peer}`
  switch (e.code) {
    case RpcCode.METHOD_NOT_FOUND:
      return new WarrenError('ERR_RPC_UNKNOWN_METHOD', `${who} has no method "${method}"`, {
        hint: `\`warren call ${peer}._info\` lists the methods it lets this node call.`,
        details: { peer, method },
      })
    case RpcCode.NOT_ALLOWED:
      return new WarrenError('ERR_RPC_REFUSED', `${who} does not allow this node to call "${method}"`, {
        hint: `Ask its owner to add this node${selfId === undefined ? '' : ` (${selfId})`} to rpc.allow (or to peers) in its config.json.`,
        details: { peer, method },
      })
    case RpcCode.INVALID_PARAMS:
      return new WarrenError('ERR_RPC_BAD_PARAMS', `${who} refused the params of "${method}": ${e.message}`, {
        details: { peer, method },
      })
    case RpcCode.TIMEOUT:
      return new WarrenError('ERR_TIMEOUT', `${who}: ${e.message}`, { details: { peer, method } })
    case RpcCode.PARSE_ERROR:
    case RpcCode.INVALID_REQUEST:
      return new WarrenError('ERR_PROTOCOL', `${who} could not read the call of "${method}": ${e.message}`, {
        hint: 'The two nodes may run incompatible Warren versions; upgrade both.',
        details: { peer, method },
      })
    case RpcCode.TOO_LARGE:
      return new WarrenError('ERR_RPC_TOO_LARGE', `${who}: ${e.message}`, {
        hint: 'Send less per call (split a batch), or ask for less.',
        details: { peer, method },
      })
  }
  if (data !== undefined && typeof data.code === 'string' && Object.hasOwn(ERROR_CODES, data.code)) {
    return new WarrenError(data.code as ErrorCode, `${who}: ${String(data.message ?? e.message)}`, {
      ...(typeof data.hint === 'string' ? { hint: data.hint } : {}),
      details: { peer, method },
    })
  }
  return new WarrenError('ERR_RPC_FAILED', `${who} answered "${method}" with error ${e.code}: ${e.message}`, {
    details: { peer, method, rpcCode: e.code },
  })
}

/** Opens an RPC stream on `conn`. */
export async function openRpcStream(conn: Connection, signal: AbortSignal): Promise<Stream> {
  try {
    return await conn.newStream(RPC_PROTOCOL, { signal, runOnLimitedConnection: true, negotiateFully: false })
  } catch (err) {
    const e = err as Error
    if (e.name === 'UnsupportedProtocolError') {
      throw new WarrenError('ERR_PROTOCOL', `node ${conn.remotePeer} does not speak ${RPC_PROTOCOL}`, {
        hint: 'It may run an older Warren; upgrade it.',
        cause: err,
      })
    }
    throw new WarrenError('ERR_DIAL_FAILED', `could not open a stream to node ${conn.remotePeer}: ${e.message}`, {
      cause: err,
    })
  }
}

/** Opens an RPC stream on `conn` once one of its slots is free ({@link takeSlot}); returns it with the slot's release. */
async function openSlotted(conn: Connection, signal: AbortSignal): Promise<{ stream: Stream; release: () => void }> {
  const release = await takeSlot(conn, signal)
  try {
    return { stream: await openRpcStream(conn, signal), release }
  } catch (err) {
    release()
    throw err
  }
}

/** A call or batch framed for the wire; ERR_RPC_BAD_PARAMS when its params cannot be sent as JSON. */
function encodeCall(message: unknown): Uint8Array {
  try {
    return encodeMessage(message)
  } catch (err) {
    throw new WarrenError('ERR_RPC_BAD_PARAMS', `the call cannot be sent: ${(err as Error).message}`, {
      hint: `Params must be plain JSON (no cycles, no BigInt) nested at most ${MAX_JSON_DEPTH} levels deep.`,
    })
  }
}

/** Sends one message on `stream` and waits for one answer message. */
export function exchange(
  stream: Stream,
  message: unknown,
  opts: CallOptions = {},
  peer = 'the other side',
): Promise<RpcResponse | RpcResponse[]> {
  const max = opts.maxMessageBytes ?? MAX_RPC_MESSAGE
  const timeoutMs = opts.timeoutMs ?? 30_000
  let bytes: Uint8Array
  try {
    bytes = encodeCall(message)
  } catch (err) {
    return Promise.reject(err)
  }
  if (bytes.byteLength > max + 10) {
    return Promise.reject(
      new WarrenError('ERR_RPC_TOO_LARGE', `a request of ${bytes.byteLength} bytes is over the limit of ${max} bytes`, {
        hint: 'Send less per call (split a batch).',
      }),
    )
  }
  return new Promise((resolve, reject) => {
    const buf = new Uint8ArrayList()
    const done = (err: Error | undefined, answer?: RpcResponse | RpcResponse[]): void => {
      clearTimeout(timer)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      opts.signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve(answer!)
      else reject(err)
    }
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      buf.append(evt.data)
      try {
        const body = takeMessage(buf, max)
        if (body !== undefined) done(undefined, parseResponses(body))
      } catch (err) {
        done(new WarrenError('ERR_PROTOCOL', `node ${peer}: ${(err as Error).message}`, { cause: err }))
      }
    }
    const onClose = (evt: Event & { error?: Error }): void =>
      done(
        new WarrenError('ERR_STREAM_ABORTED', `the RPC stream closed before the answer arrived`, {
          cause: evt.error,
        }),
      )
    const onAbort = (): void => done(new WarrenError('ERR_TIMEOUT', 'the call was cancelled'))
    const timer = setTimeout(() => done(new WarrenError('ERR_TIMEOUT', `no answer within ${timeoutMs} ms`)), timeoutMs)
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    opts.signal?.addEventListener('abort', onAbort)
    if (opts.signal?.aborted === true) return onAbort()
    if (endedAlready(stream) !== undefined) {
      return done(new WarrenError('ERR_STREAM_ABORTED', 'the RPC stream closed before the call was sent'))
    }
    try {
      stream.send(bytes)
    } catch (err) {
      done(new WarrenError('ERR_STREAM_ABORTED', `the RPC stream closed before the call was sent`, { cause: err }))
    }
  })
}

let nextId = 1

/** Calls `method` on the node at the other end of `conn`; resolves with its result. */
export async function callOn(
  conn: Connection,
  method: string,
  params?: unknown,
  opts: CallOptions = {},
): Promise<unknown> {
  const peer = conn.remotePeer.toString()
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? 30_000), ...(opts.signal ? [opts.signal] : [])])
  const { stream, release } = await openSlotted(conn, signal)
  try {
    const req: RpcRequest = { jsonrpc: '2.0', id: nextId++, method }
    if (params !== undefined) req.params = params
    const answer = await exchange(stream, req, opts, peer)
    if (Array.isArray(answer)) throw new WarrenError('ERR_PROTOCOL', `node ${peer} answered one call with a batch`)
    if ('error' in answer) throw remoteError(peer, method, answer.error, opts.selfId)
    return answer.result
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    if (stream.status === 'open') await stream.close().catch(() => {})
    releaseWhenClosed(stream, release)
  }
}

/** Sends `requests` as one batch; resolves with the answers by id (notifications get none). */
export async function batchOn(
  conn: Connection,
  requests: RpcRequest[],
  opts: CallOptions = {},
): Promise<RpcResponse[]> {
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? 30_000), ...(opts.signal ? [opts.signal] : [])])
  const { stream, release } = await openSlotted(conn, signal)
  try {
    if (requests.every((r) => r.id === undefined)) {
      // only notifications: nothing comes back
      stream.send(encodeCall(requests))
      return []
    }
    const answer = await exchange(stream, requests, opts, conn.remotePeer.toString())
    return Array.isArray(answer) ? answer : [answer]
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    if (stream.status === 'open') await stream.close().catch(() => {})
    releaseWhenClosed(stream, release)
  }
}
