/**
 * The local API server: JSON-RPC 2.0 over a Unix socket (mode 0600), one message per line — or HTTP on the same
 * socket (`POST /jsonrpc`, src/daemon/api-http.ts) when a connection starts with an HTTP method.
 *
 * Ordinary methods go to {@link ApiHandler.call}. `stream.open` switches its connection to a framed byte stream
 * (src/daemon/stream-frames.ts): the server stops reading lines, and {@link ApiHandler.openStream} owns the socket
 * from then on.
 */
import { chmod, unlink } from 'node:fs/promises'
import type { Server as HttpServer } from 'node:http'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { toWarrenError, WarrenError } from '../errors.ts'
import { LogThrottle } from '../log-throttle.ts'
import { processDescriptors } from '../open-files.ts'
import { nestedDeeperThan } from '../rpc/json-depth.ts'
import { NESTED_TOO_DEEP } from '../rpc/wire.ts'
import { createApiHttpServer, looksLikeHttp } from './api-http.ts'
import { answerJson } from './api-json.ts'
import { LineSplitter, MAX_LINE_BYTES, RPC_ERRORS, type RpcError, type RpcResponse } from './api-protocol.ts'

export interface ApiHandler {
  /** Runs one method; throws a WarrenError (or ERR_USAGE for bad params) on failure. */
  call(method: string, params: unknown): Promise<unknown>
  /**
   * Takes over an upgraded connection. Call `accept(result)` once the remote service answered OK — it writes the
   * result line — then move the stream's bytes in frames; throwing before `accept` sends the error as the JSON-RPC
   * answer.
   */
  openStream(socket: Socket, params: unknown, accept: (result: unknown) => void): Promise<void>
}

const STREAM_METHOD = 'stream.open'

/** Calls one API connection may have under way at once; its further requests wait unread. */
const MAX_CALLS_AT_ONCE = 64

type Id = number | string | null

function errorObject(id: Id, error: RpcError): RpcResponse {
  return { jsonrpc: '2.0', id, error }
}

function warrenError(id: Id, err: unknown): RpcResponse {
  const we = toWarrenError(err)
  const code = we.code === 'ERR_USAGE' ? RPC_ERRORS.invalidParams : RPC_ERRORS.application
  return errorObject(id, { code, message: we.message, data: we.toJSON() })
}

function protocolError(id: Id, code: number, message: string): RpcResponse {
  const data = new WarrenError('ERR_API', message, {
    hint: 'Send JSON-RPC 2.0 requests, one per line, or POST them to /jsonrpc; see docs/protocol.md.',
  }).toJSON()
  return errorObject(id, { code, message, data })
}

const line = (r: RpcResponse): string => `${answerJson(r)}\n`

/** True when something accepts connections on the Unix socket at `path`. */
export function socketAlive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path)
    const done = (alive: boolean): void => {
      clearTimeout(timer)
      s.destroy()
      resolve(alive)
    }
    const timer = setTimeout(() => done(true), timeoutMs) // a hung listener still owns the path
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

export class ApiServer {
  readonly path: string
  #server: Server
  #handler: ApiHandler
  #sockets = new Set<Socket>()
  #log: (message: string) => void
  #closed: Promise<void> | undefined
  #http: HttpServer | undefined
  /** Streams (`warren connect`) refused at the open-file limit: one line, then a count once a minute. */
  readonly #fileLimit: LogThrottle

  private constructor(path: string, server: Server, handler: ApiHandler, log: (message: string) => void) {
    this.path = path
    this.#server = server
    this.#handler = handler
    this.#log = log
    this.#fileLimit = new LogThrottle({ intervalMs: 60_000, emit: log })
  }

  /**
   * Listens on `path`. A socket file left by a crashed daemon is removed first; one that still answers belongs to
   * a live daemon and is an ERR_DAEMON_RUNNING.
   */
  static async listen(
    path: string,
    handler: ApiHandler,
    opts: { home: string; log?: (message: string) => void },
  ): Promise<ApiServer> {
    const log = opts.log ?? (() => {})
    if (await socketAlive(path)) {
      throw new WarrenError('ERR_DAEMON_RUNNING', `another Warren daemon already answers on the API socket ${path}`, {
        hint: `Stop that daemon with \`warren down\`, or give this home its own \`api.socket\` in ${opts.home}/config.json.`,
        details: { home: opts.home, socket: path },
      })
    }
    await unlink(path).then(
      () => log(`removed a stale API socket at ${path}`),
      () => {},
    )
    const server = createServer({ allowHalfOpen: true })
    const api = new ApiServer(path, server, handler, log)
    server.on('connection', (s) => api.#accept(s))
    const oldMask = process.umask(0o077) // the socket is born 0600, not only chmod-ed to it
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(path, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      throw new WarrenError('ERR_LISTEN_FAILED', `cannot listen on the API socket ${path}: ${(err as Error).message}`, {
        hint: 'Check that the directory exists and is writable, or set `api.socket` in config.json.',
        cause: err,
      })
    } finally {
      process.umask(oldMask)
    }
    await chmod(path, 0o600)
    return api
  }

  /** Checks one parsed message and runs it; undefined for a notification. */
  async #dispatch(msg: unknown, allowStream: boolean): Promise<RpcResponse | undefined> {
    const m = msg as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown } | null
    const id = typeof m?.id === 'number' || typeof m?.id === 'string' ? m.id : null
    if (m === null || typeof m !== 'object' || m.jsonrpc !== '2.0' || typeof m.method !== 'string') {
      return protocolError(id, RPC_ERRORS.invalidRequest, 'request is not a JSON-RPC 2.0 request')
    }
    if (nestedDeeperThan(m.params)) return protocolError(id, RPC_ERRORS.invalidParams, `params ${NESTED_TOO_DEEP}`)
    if (m.method === STREAM_METHOD && !allowStream) {
      return protocolError(id, RPC_ERRORS.invalidRequest, `${STREAM_METHOD} needs the line protocol, not HTTP`)
    }
    try {
      const result = await this.#handler.call(m.method, m.params)
      return id === null ? undefined : { jsonrpc: '2.0', id, result }
    } catch (err) {
      return id === null ? undefined : warrenError(id, err)
    }
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket)
    socket.on('close', () => this.#sockets.delete(socket))
    socket.on('error', () => {}) // a client that vanishes is not the daemon's problem
    socket.once('data', (first: Buffer) => {
      socket.pause()
      socket.unshift(first)
      if (looksLikeHttp(first)) {
        this.#http ??= createApiHttpServer((msg) => this.#dispatch(msg, false))
        this.#http.emit('connection', socket)
      } else this.#acceptLines(socket)
      socket.resume()
    })
  }

  #acceptLines(socket: Socket): void {
    const lines = new LineSplitter()
    let upgraded = false
    let pending = 0
    let ended = false
    // a client that sends requests faster than it reads their answers is read no further until it catches up: at
    // most MAX_CALLS_AT_ONCE calls run for one connection, and their answers do not pile up in the daemon
    const holding = (): boolean => pending >= MAX_CALLS_AT_ONCE || socket.writableNeedDrain
    const write = (text: string): void => {
      if (!upgraded && !socket.destroyed && socket.writable && text !== '') socket.write(text)
    }
    const take = (): void => {
      if (upgraded) return
      while (!holding()) {
        const text = lines.shift()
        if (text === undefined) break
        if (text.trim() === '') continue
        let msg: { id?: unknown; method?: unknown; params?: unknown }
        try {
          msg = JSON.parse(text)
        } catch {
          write(line(protocolError(null, RPC_ERRORS.parse, 'request is not valid JSON')))
          continue
        }
        if (
          msg !== null &&
          typeof msg === 'object' &&
          (msg as { jsonrpc?: unknown }).jsonrpc === '2.0' &&
          msg.method === STREAM_METHOD
        ) {
          const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : null
          upgraded = true
          socket.off('data', onData)
          socket.pause()
          const rest = lines.rest()
          if (rest.length > 0) socket.unshift(rest)
          this.#upgrade(socket, id, msg.params)
          return
        }
        pending++
        this.#dispatch(msg, true).then((r) => {
          write(r === undefined ? '' : line(r))
          pending--
          take()
        })
      }
      if (ended) {
        if (pending === 0 && !lines.hasLine()) socket.end()
      } else if (holding() !== socket.isPaused() && !socket.destroyed) {
        if (holding()) socket.pause()
        else socket.resume()
      }
    }
    const onData = (chunk: Buffer): void => {
      try {
        lines.push(chunk)
      } catch {
        socket.end(line(protocolError(null, RPC_ERRORS.invalidRequest, `request longer than ${MAX_LINE_BYTES} bytes`)))
        socket.destroySoon()
        return
      }
      take()
    }
    socket.on('data', onData)
    socket.on('drain', take)
    socket.on('end', () => {
      ended = true
      take()
    })
  }

  #upgrade(socket: Socket, id: Id, params: unknown): void {
    // a stream is a local connection like a forward's client (calls are short and come out of the reserve, so that
    // `warren status` still answers at the limit)
    const fds = processDescriptors()
    const release = fds.take()
    if (release === undefined) {
      const err = new WarrenError('ERR_FILE_LIMIT', `the daemon refused a stream: ${fds.describe()}`)
      this.#fileLimit.log('file-limit', `${err.code}: ${err.message}`, 'API streams refused at the open-file limit')
      socket.write(line(warrenError(id, err)))
      socket.destroySoon()
      return
    }
    socket.once('close', release)
    let accepted = false
    const accept = (result: unknown): void => {
      accepted = true
      socket.write(line({ jsonrpc: '2.0', id, result }))
    }
    this.#handler.openStream(socket, params, accept).then(
      () => {
        if (!accepted) socket.destroy()
      },
      (err) => {
        if (accepted) {
          this.#log(`stream ended with an error: ${(err as Error).message}`)
          socket.destroy()
        } else if (!socket.destroyed) {
          // the socket is paused (no more lines are read), so do not wait for the client's FIN
          socket.write(line(warrenError(id, err)))
          socket.destroySoon()
        }
      },
    )
  }

  /** Connections open right now (including upgraded streams). */
  get connections(): number {
    return this.#sockets.size
  }

  /** Stops accepting connections; open ones (and upgraded streams) carry on until {@link close}. */
  stopAccepting(): void {
    this.#closed ??= new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  /**
   * Stops accepting, ends every connection (their clients see EOF), waits up to `graceMs` for them to close,
   * destroys the rest, and removes the socket file.
   */
  async close(graceMs = 1000): Promise<void> {
    this.#fileLimit.close()
    this.stopAccepting()
    for (const s of this.#sockets) s.end()
    const deadline = Date.now() + graceMs
    while (this.#sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    for (const s of this.#sockets) s.destroy()
    await this.#closed
    await unlink(this.path).catch(() => {})
  }
}
