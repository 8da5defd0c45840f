/**
 * The `/warren/rpc/1.0.0` wire format (docs/protocol.md): JSON-RPC 2.0 messages, each a uvarint length followed by
 * that many bytes of UTF-8 JSON, both ways on one libp2p stream. A message is one request, one notification or a
 * batch (an array); the answer to a batch is one array. Many messages may follow each other on a stream, and answers
 * come back in the order their requests finished.
 */
import { varint } from 'multiformats'
import type { Uint8ArrayList } from 'uint8arraylist'
import { z } from 'zod'
import { MAX_JSON_DEPTH, nestedDeeperThan } from './json-depth.ts'

export const RPC_PROTOCOL = '/warren/rpc/1.0.0'

/** Largest message either side accepts by default (a request, a batch or an answer), bytes. */
export const MAX_RPC_MESSAGE = 1024 * 1024

/** RPC streams a node takes on one connection at once; a caller keeps to it and queues further calls. */
export const RPC_STREAMS_PER_CONNECTION = 8

/** JSON-RPC 2.0 error codes, and Warren's own in the range the spec leaves to implementations. */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** The handler failed with a WarrenError; `data` carries its code, message and hint. */
  WARREN_ERROR: -32000,
  /** The caller may not call this method (`rpc.allow`, or the method's own allow list). */
  NOT_ALLOWED: -32001,
  /** The handler did not answer within the node's time-out. */
  TIMEOUT: -32002,
  /** The message is larger than the node accepts. */
  TOO_LARGE: -32003,
} as const

export type RpcId = string | number | null

export interface RpcRequest {
  jsonrpc: '2.0'
  method: string
  params?: unknown
  /** Absent in a notification, which gets no answer. */
  id?: RpcId
}

export interface RpcErrorObject {
  code: number
  message: string
  data?: unknown
}

export type RpcResponse =
  | { jsonrpc: '2.0'; id: RpcId; result: unknown }
  | { jsonrpc: '2.0'; id: RpcId; error: RpcErrorObject }

const idSchema = z.union([z.string(), z.number(), z.null()])

const requestSchema = z
  .object({
    jsonrpc: z.literal('2.0'),
    method: z.string().min(1).max(256),
    params: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).optional(),
    id: idSchema.optional(),
  })
  .strict()

const responseSchema = z.union([
  z.object({ jsonrpc: z.literal('2.0'), id: idSchema, result: z.unknown() }).strict(),
  z
    .object({
      jsonrpc: z.literal('2.0'),
      id: idSchema,
      error: z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() }),
    })
    .strict(),
])

/** Why a message nested deeper than MAX_JSON_DEPTH is refused. */
export const NESTED_TOO_DEEP = `nested deeper than ${MAX_JSON_DEPTH} levels`

/**
 * One JSON-RPC message framed for the wire. Throws RpcFrameError when the message cannot be JSON (a cycle, a BigInt)
 * or nests deeper than the far side takes.
 */
export function encodeMessage(message: unknown): Uint8Array {
  let text: string
  try {
    text = JSON.stringify(message)
  } catch (err) {
    // a RangeError: the call stack ran out, thousands of levels down
    if (err instanceof RangeError) throw new RpcFrameError(`the message is ${NESTED_TOO_DEEP}`)
    throw new RpcFrameError(`the message cannot be sent as JSON: ${(err as Error).message.split('\n')[0]}`)
  }
  if (nestedDeeperThan(message)) throw new RpcFrameError(`the message is ${NESTED_TOO_DEEP}`)
  const body = new TextEncoder().encode(text)
  const out = new Uint8Array(varint.encodingLength(body.length) + body.length)
  varint.encodeTo(body.length, out, 0)
  out.set(body, varint.encodingLength(body.length))
  return out
}

export class RpcFrameError extends Error {
  override name = 'RpcFrameError'
  /** The announced length, when the frame was refused for its size. */
  readonly length: number | undefined
  constructor(message: string, length?: number) {
    super(message)
    this.length = length
  }
}

/**
 * Takes one message body off the front of `buf` if it is complete: undefined when more bytes are needed,
 * RpcFrameError when the length prefix is malformed or over `max`.
 */
export function takeMessage(buf: Uint8ArrayList, max = MAX_RPC_MESSAGE): Uint8Array | undefined {
  if (buf.byteLength === 0) return undefined
  const head = buf.subarray(0, Math.min(buf.byteLength, 5))
  let len: number
  let n: number
  try {
    ;[len, n] = varint.decode(head)
  } catch {
    if (head.length < 5) return undefined
    throw new RpcFrameError('the message length prefix is malformed')
  }
  if (len > max) throw new RpcFrameError(`a message of ${len} bytes is over the limit of ${max} bytes`, len)
  if (buf.byteLength < n + len) return undefined
  const body = buf.subarray(n, n + len)
  buf.consume(n + len)
  return body
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: RpcErrorObject; id: RpcId }

/** Parses a received body as a request or a batch of them (each element checked on its own, as the spec says). */
export function parseRequests(body: Uint8Array): Parsed<RpcRequest>[] | Parsed<RpcRequest> {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body))
  } catch (err) {
    return { ok: false, id: null, error: { code: RpcCode.PARSE_ERROR, message: `not JSON: ${(err as Error).message}` } }
  }
  if (nestedDeeperThan(json)) {
    const raw = json as { id?: unknown }
    const id = idSchema.safeParse(raw?.id).success ? (raw.id as RpcId) : null
    return { ok: false, id, error: { code: RpcCode.INVALID_REQUEST, message: NESTED_TOO_DEEP } }
  }
  if (Array.isArray(json)) {
    if (json.length === 0)
      return { ok: false, id: null, error: { code: RpcCode.INVALID_REQUEST, message: 'an empty batch' } }
    return json.map(checkRequest)
  }
  return checkRequest(json)
}

function checkRequest(json: unknown): Parsed<RpcRequest> {
  const r = requestSchema.safeParse(json)
  if (r.success) return { ok: true, value: r.data as RpcRequest }
  const raw = json as { id?: unknown } | null
  const id = idSchema.safeParse(raw?.id).success ? (raw!.id as RpcId) : null
  const issue = r.error.issues[0]!
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''
  return {
    ok: false,
    id,
    error: { code: RpcCode.INVALID_REQUEST, message: `not a JSON-RPC 2.0 request (${where}${issue.message})` },
  }
}

/** Parses a received body as an answer or a batch of answers; throws RpcFrameError when it is neither. */
export function parseResponses(body: Uint8Array): RpcResponse | RpcResponse[] {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body))
  } catch (err) {
    throw new RpcFrameError(`the answer is not JSON: ${(err as Error).message}`)
  }
  if (nestedDeeperThan(json)) throw new RpcFrameError(`the answer is ${NESTED_TOO_DEEP}`)
  const one = (x: unknown): RpcResponse => {
    const r = responseSchema.safeParse(x)
    if (!r.success) throw new RpcFrameError('the answer is not a JSON-RPC 2.0 response')
    return r.data as RpcResponse
  }
  return Array.isArray(json) ? json.map(one) : one(json)
}
