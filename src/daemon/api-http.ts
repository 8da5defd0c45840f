/**
 * The local API as HTTP on the same Unix socket: `POST /jsonrpc` with one JSON-RPC 2.0 request or a batch, answered
 * as JSON. The API server hands a connection here when its first byte is a letter (an HTTP method) rather than a
 * JSON message, so curl works without a second socket:
 *
 * ```sh
 * curl --unix-socket ~/.warren/api.sock http://warren/jsonrpc \
 *   -d '{"jsonrpc":"2.0","id":1,"method":"laptop._ping","params":{}}'
 * ```
 *
 * A request that carries an `Origin` header came from a web page and is refused (403): the API is for the user's
 * own programs. `stream.open` needs the line protocol and is refused here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { answerJson } from './api-json.ts'
import { MAX_LINE_BYTES, RPC_ERRORS, type RpcResponse } from './api-protocol.ts'

/** Answers one parsed JSON-RPC message (already known to be an object); undefined for a notification. */
export type Dispatch = (msg: unknown) => Promise<RpcResponse | undefined>

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : `${answerJson(body as RpcResponse | RpcResponse[])}\n`
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}

function rpcError(status: number, code: number, message: string): [number, RpcResponse] {
  return [status, { jsonrpc: '2.0', id: null, error: { code, message } }]
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_LINE_BYTES) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

async function answer(req: IncomingMessage, dispatch: Dispatch): Promise<[number, unknown]> {
  if (req.headers.origin !== undefined) {
    return rpcError(403, RPC_ERRORS.invalidRequest, 'the local API does not answer web pages (Origin header)')
  }
  const path = (req.url ?? '/').split('?')[0]
  if (path !== '/jsonrpc' && path !== '/')
    return rpcError(404, RPC_ERRORS.invalidRequest, `no page ${path}: POST /jsonrpc`)
  if (req.method !== 'POST') return rpcError(405, RPC_ERRORS.invalidRequest, 'use POST /jsonrpc with a JSON body')
  const body = await readBody(req)
  if (body === undefined) return rpcError(413, RPC_ERRORS.invalidRequest, `request over ${MAX_LINE_BYTES} bytes`)
  let msg: unknown
  try {
    msg = JSON.parse(body.toString('utf8'))
  } catch {
    return rpcError(400, RPC_ERRORS.parse, 'request is not valid JSON')
  }
  if (Array.isArray(msg)) {
    if (msg.length === 0) return rpcError(400, RPC_ERRORS.invalidRequest, 'an empty batch')
    const answers = (await Promise.all(msg.map(dispatch))).filter((a) => a !== undefined)
    return answers.length === 0 ? [204, undefined] : [200, answers]
  }
  const one = await dispatch(msg)
  return one === undefined ? [204, undefined] : [200, one]
}

/** An HTTP server that never listens: the API server emits connections into it. */
export function createApiHttpServer(dispatch: Dispatch): Server {
  const server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    answer(req, dispatch).then(
      ([status, body]) => reply(res, status, body),
      () => reply(res, 500, undefined),
    )
  })
  server.keepAliveTimeout = 5_000
  return server
}

/** Whether the first byte of a connection starts an HTTP request (a method name) rather than a JSON message. */
export function looksLikeHttp(first: Buffer): boolean {
  const c = first[0]
  return c !== undefined && c >= 0x41 && c <= 0x5a // 'A'-'Z'
}
