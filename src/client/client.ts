/**
 * The local API client: everything the CLI does goes through this class, and programs can use it the same way
 * to drive a running Warren daemon.
 *
 * @example
 * ```ts
 * import { WarrenClient } from 'warren/client'
 *
 * const client = await WarrenClient.connect({ home: '/tmp/a' })   // or $WARREN_HOME, or ~/.warren
 * console.log((await client.id()).ticket)
 * await client.expose('web', '/tcp/8080', { allow: ['*'] })
 * const fwd = await client.forwardAdd({ node: 'laptop', service: 'db', listen: '127.0.0.1:0' })
 * console.log(`psql -h 127.0.0.1 -p ${fwd.listen.split(':')[1]}`)
 *
 * const stream = await client.openStream('laptop', 'web')         // the service's bytes, both ways
 * stream.end('GET / HTTP/1.0\r\n\r\n')
 * stream.on('error', (err) => console.error(err.message))         // cut before its end: ERR_STREAM_ABORTED
 * stream.pipe(process.stdout)
 * client.close()
 * ```
 *
 * Errors are {@link WarrenError}s with the daemon's code, message and hint; with no daemon running, calls throw
 * ERR_DAEMON_NOT_RUNNING.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { type HomePaths, resolveHome, socketPath } from '../config/home.ts'
import {
  type ApiMethod,
  type ApiMethods,
  LineSplitter,
  MAX_ANSWER_BYTES,
  type ParamsOf,
  type ResultOf,
  type RpcError,
} from '../daemon/api-protocol.ts'
import { FramedStream } from '../daemon/stream-frames.ts'
import { WarrenError } from '../errors.ts'
import { type RpcServiceInfo, servicesAnswer } from '../rpc/builtins.ts'

export interface ClientOptions {
  /** Warren home (path or resolved paths); default `$WARREN_HOME` or `~/.warren`. */
  home?: string | HomePaths
  /** API socket path; default: `api.socket` from the home's config.json, else `<home>/api.sock`. */
  socket?: string
}

/** The API socket of a home: config `api.socket` if config.json names one, else `<home>/api.sock`. */
export function apiSocketPath(home: HomePaths): string {
  try {
    const json = JSON.parse(readFileSync(home.config, 'utf8')) as { api?: { socket?: unknown } }
    if (typeof json?.api?.socket === 'string' && json.api.socket !== '') return socketPath(home, json.api.socket)
  } catch {
    // no or unreadable config: the daemon could not run with it either; use the default path
  }
  return home.socket
}

function notRunning(home: HomePaths, cause?: unknown): WarrenError {
  return new WarrenError('ERR_DAEMON_NOT_RUNNING', `no Warren daemon is running for ${home.dir}`, {
    hint: 'start one with `warren up`',
    details: { home: home.dir },
    cause,
  })
}

function connectionLost(): WarrenError {
  return new WarrenError('ERR_API', 'the Warren daemon closed the connection before answering', {
    hint: 'It may have stopped or crashed: check its log, and start it again with `warren up`.',
  })
}

function rpcToError(error: RpcError | undefined): WarrenError {
  if (error?.data !== undefined) return WarrenError.fromJSON(error.data)
  return new WarrenError('ERR_API', `the daemon answered with an error: ${error?.message ?? 'no message'}`, {
    hint: 'The daemon and this client may be different Warren versions; restart the daemon.',
  })
}

function openSocket(path: string, home: HomePaths): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path, allowHalfOpen: true })
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') reject(notRunning(home, err))
      else if (err.code === 'EACCES') {
        reject(
          new WarrenError('ERR_API', `cannot open the API socket ${path}: permission denied`, {
            hint: 'The daemon runs as another user; run this command as that user.',
            cause: err,
          }),
        )
      } else reject(err)
    })
  })
}

/** The stream after a `stream.open` result: every way it can fail is an ERR_STREAM_ABORTED naming the cause. */
function framedStream(socket: Socket, what: string): FramedStream {
  return new FramedStream(socket, {
    aborted: (info) =>
      new WarrenError('ERR_STREAM_ABORTED', `the stream to ${what} was cut: ${info.message}`, {
        hint: 'Run it again; if it keeps failing, the log of either daemon names the cause.',
        details: { stream: what, cause: info.code },
      }),
    lost: (cause) =>
      new WarrenError('ERR_STREAM_ABORTED', `the Warren daemon closed the stream to ${what} before it ended`, {
        hint: 'The daemon may have stopped or crashed: check its log, and start it again with `warren up`.',
        details: { stream: what },
        cause,
      }),
  })
}

type Pending = { resolve(v: unknown): void; reject(e: Error): void }

export class WarrenClient {
  readonly home: HomePaths
  readonly socketPath: string
  #socket: Socket
  #nextId = 1
  #pending = new Map<number, Pending>()

  private constructor(home: HomePaths, path: string, socket: Socket) {
    this.home = home
    this.socketPath = path
    this.#socket = socket
    const lines = new LineSplitter(MAX_ANSWER_BYTES)
    socket.on('data', (chunk: Buffer) => {
      try {
        lines.push(chunk)
      } catch (err) {
        this.#fail(err as Error)
        return
      }
      for (let line = lines.shift(); line !== undefined; line = lines.shift()) this.#onLine(line)
    })
    socket.on('error', (err) => this.#fail(err))
    // the socket is half-open capable (for streams): the daemon's end is not a close, and no answer follows it
    socket.on('end', () => {
      this.#fail(connectionLost())
      socket.destroy()
    })
    socket.on('close', () => this.#fail(connectionLost()))
  }

  /** Connects to the daemon of a home; throws ERR_DAEMON_NOT_RUNNING when none runs. */
  static async connect(opts: ClientOptions = {}): Promise<WarrenClient> {
    const home = typeof opts.home === 'object' ? opts.home : resolveHome(opts.home)
    const path = opts.socket ?? apiSocketPath(home)
    return new WarrenClient(home, path, await openSocket(path, home))
  }

  #onLine(line: string): void {
    let msg: { id?: unknown; result?: unknown; error?: RpcError }
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    if (typeof msg.id !== 'number') return
    const p = this.#pending.get(msg.id)
    if (p === undefined) return
    this.#pending.delete(msg.id)
    if (msg.error !== undefined) p.reject(rpcToError(msg.error))
    else p.resolve(msg.result)
  }

  #fail(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err)
    this.#pending.clear()
  }

  /** Calls any API method. */
  call<M extends ApiMethod>(
    method: M,
    ...params: ParamsOf<M> extends undefined ? [] : [ParamsOf<M>]
  ): Promise<ResultOf<M>> {
    if (this.#socket.destroyed || !this.#socket.writable) return Promise.reject(connectionLost())
    const id = this.#nextId++
    return new Promise<ResultOf<M>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params: params[0] })}\n`)
    })
  }

  id(): Promise<ResultOf<'id'>> {
    return this.call('id')
  }

  status(): Promise<ResultOf<'status'>> {
    return this.call('status')
  }

  services(): Promise<ResultOf<'services.list'>> {
    return this.call('services.list')
  }

  /** Exposes a service at runtime (kept across daemon restarts). */
  expose(
    name: string,
    target: string,
    opts: { allow?: string[]; kubo?: boolean; replace?: boolean } = {},
  ): Promise<ResultOf<'services.add'>> {
    return this.call('services.add', { name, target, ...opts })
  }

  unexpose(name: string): Promise<ResultOf<'services.remove'>> {
    return this.call('services.remove', { name })
  }

  peers(): Promise<ResultOf<'peers.list'>> {
    return this.call('peers.list')
  }

  /** Adds a local TCP listener forwarding to `node`/`service` (kept across daemon restarts). */
  forwardAdd(spec: ApiMethods['forward.add']['params']): Promise<ResultOf<'forward.add'>> {
    return this.call('forward.add', spec)
  }

  forwards(): Promise<ResultOf<'forward.list'>> {
    return this.call('forward.list')
  }

  forwardRemove(listen: string): Promise<ResultOf<'forward.remove'>> {
    return this.call('forward.remove', { listen })
  }

  /** UDP reachability, public address per relay STUN, NAT kind, relay round trips (`warren netcheck`). */
  netcheck(): Promise<ResultOf<'netcheck'>> {
    return this.call('netcheck')
  }

  ping(node: string, opts: { addrs?: string[] } = {}): Promise<ResultOf<'ping'>> {
    return this.call('ping', { node, ...opts })
  }

  /** Where the addresses of a node come from (cache, config, mDNS, DHT) and how old they are. */
  lookup(node: string, opts: { fresh?: boolean; all?: boolean } = {}): Promise<ResultOf<'lookup'>> {
    return this.call('lookup', { node, ...opts })
  }

  /** Calls `method` of another node over `/warren/rpc/1.0.0`; resolves with its result, the round trip and the path. */
  callNode(
    node: string,
    method: string,
    params?: unknown,
    opts: { addrs?: string[] } = {},
  ): Promise<ResultOf<'node.call'>> {
    return this.call('node.call', { node, method, ...(params === undefined ? {} : { params }), ...opts })
  }

  /** The services another node lets this node use (its `_services` method). */
  async ls(node: string, opts: { addrs?: string[] } = {}): Promise<RpcServiceInfo[]> {
    const answer = await this.callNode(node, '_services', undefined, opts)
    return servicesAnswer(answer.id, answer.result)
  }

  /** Asks the daemon to stop; resolves once it has accepted (it stops right after). */
  stopDaemon(): Promise<ResultOf<'daemon.stop'>> {
    return this.call('daemon.stop')
  }

  /**
   * Opens a byte stream to `node`/`service` on an API connection of its own. Resolves once the remote service
   * accepted, with a Duplex of the service's bytes (framed on the API socket, see src/daemon/stream-frames.ts).
   * `end()` half-closes (the service sees EOF and can still answer); `'end'` means the service finished sending,
   * cleanly. A stream cut before that (the service or a daemon reset it, the connection was lost, the daemon
   * stopped) emits `'error'` with ERR_STREAM_ABORTED and never `'end'`. `destroy()` before both sides ended
   * resets the stream at the service.
   */
  async openStream(node: string, service: string, opts: { addrs?: string[] } = {}): Promise<Duplex> {
    const socket = await openSocket(this.socketPath, this.home)
    return new Promise<Duplex>((resolve, reject) => {
      const lines = new LineSplitter()
      const fail = (err: Error): void => {
        cleanup()
        socket.destroy()
        reject(err)
      }
      // Read the answer line in paused mode ('readable' + read()), so that no byte after it is consumed here:
      // the frames that follow are the FramedStream's.
      const onReadable = (): void => {
        for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
          try {
            lines.push(chunk)
          } catch (err) {
            fail(err as Error)
            return
          }
          const line = lines.shift()
          if (line !== undefined) {
            answered(line)
            return
          }
        }
      }
      const answered = (line: string): void => {
        cleanup()
        const rest = lines.rest()
        if (rest.length > 0) socket.unshift(rest)
        let msg: { result?: unknown; error?: RpcError }
        try {
          msg = JSON.parse(line)
        } catch {
          fail(new WarrenError('ERR_API', 'the daemon answered stream.open with something that is not JSON'))
          return
        }
        if (msg.error !== undefined || msg.result === undefined) {
          socket.destroy()
          reject(rpcToError(msg.error))
          return
        }
        resolve(framedStream(socket, `${node}/${service}`))
      }
      const onEnd = (): void => fail(connectionLost())
      const onError = (err: Error): void => fail(err)
      const cleanup = (): void => {
        socket.off('readable', onReadable)
        socket.off('end', onEnd)
        socket.off('error', onError)
      }
      socket.on('readable', onReadable)
      socket.once('end', onEnd)
      socket.once('error', onError)
      socket.write(
        `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'stream.open', params: { node, service, ...opts } })}\n`,
      )
    })
  }

  /** Closes the API connection (streams from {@link openStream} are separate and stay open). */
  close(): void {
    this.#socket.destroy()
  }
}
