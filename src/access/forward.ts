/**
 * Port forwards: a local TCP listener whose every connection becomes a service stream to a node.
 *
 * A new forward is checked first (src/access/forward-check.ts): a refusal (unknown service, not authorised) fails
 * the add and no listener stays; any other failure keeps the forward and is reported in its `check`. Each forward
 * counts its connections (open, served, failed) and keeps the latest failure of a client connection.
 *
 * @example
 * ```ts
 * const fwd = new Forwarder(
 *   (socket, node, service, addrs) => warren.pipeService(socket, node, service, { addrs }),
 *   (node, service, addrs) => warren.checkService(node, service, { addrs }),
 * )
 * await fwd.add({ node: 'laptop', service: 'db', listen: '127.0.0.1:5432' })
 * ```
 */

import { createServer, isIP, type Server, type Socket } from 'node:net'
import { formatListenAddress, parseListenAddress } from '../config/listen-address.ts'
import { type ErrorCode, toWarrenError, WarrenError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { LogThrottle } from '../log-throttle.ts'
import { type DescriptorBudget, processDescriptors } from '../open-files.ts'
import { abortLocal, type PipeResult, reasonOf } from '../p2p/pipe.ts'
import { isRefusal } from './forward-check.ts'
import { LocalUserGate } from './local-user.ts'
import { checkPublicListen } from './settings.ts'

/** A failure a forward saw: when, its error code and message. */
export interface ForwardError {
  /** When it happened, ms since the Unix epoch. */
  at: number
  code: ErrorCode
  message: string
}

/**
 * The service check of a forward: one service stream opened (and closed again at once) when the forward was added,
 * or restored at daemon start. `ok`: the service answered OK; `failed`: `error` says why (a refusal only at
 * restore, since `warren forward` refuses to add such a forward); `skipped`: added with `--no-check`;
 * `running`: under way (restored forwards are checked in the background).
 */
export interface ForwardCheck {
  state: 'ok' | 'failed' | 'skipped' | 'running'
  /** When the check finished. */
  at?: number
  error?: ForwardError
}

export interface ForwardInfo {
  /** `host:port` it listens on (actual port when 0 was asked for). */
  listen: string
  node: string
  service: string
  /** Open client connections right now. */
  active: number
  /** Connections served since it started. */
  total: number
  /** Connections whose service stream could not be opened or ended abnormally. */
  failed: number
  /** The latest of those failures. */
  lastError?: ForwardError
  check: ForwardCheck
}

/** Opens the service stream for one client connection and pipes it; rejects when the stream cannot be opened. */
export type PipeFn = (socket: Socket, node: string, service: string, addrs?: string[]) => Promise<PipeResult>
/** The service check; rejects with the error a client connection would meet. */
export type CheckFn = (node: string, service: string, addrs?: string[]) => Promise<void>

export interface ForwardSpec {
  node: string
  service: string
  listen: string
  addrs?: string[]
  /** false: no service check (`warren forward --no-check`). Default true. */
  check?: boolean
  /** true: a non-loopback `listen` is wanted (`warren forward --public`); without it such a forward is refused. */
  public?: boolean
}

export interface AddOptions {
  /**
   * true (default): wait for the check, and fail with a refusal instead of adding the forward. false: add the
   * forward at once and check in the background (restored forwards at daemon start), a refusal only reported.
   */
  waitForCheck?: boolean
}

interface Entry {
  info: ForwardInfo
  addrs: string[] | undefined
  server: Server
  sockets: Set<Socket>
  /** Set once closed (removed, or every forward closed while this one was still being checked). */
  closed?: boolean
}

/** A pipe that ended by an error, as the forward reports it. */
export function pipeEndError(res: PipeResult & { error: Error }): WarrenError {
  const e = res.error as Error & { syscall?: string }
  const who = e.syscall === undefined ? '' : 'client connection: '
  const message = `stream ended abnormally after ${res.bytesIn} bytes in, ${res.bytesOut} out: ${who}${reasonOf(e)}`
  return new WarrenError(e instanceof WarrenError ? e.code : 'ERR_STREAM_ABORTED', message, { cause: e })
}

/** Listen hosts that take connections on every address. */
const WILDCARD = new Set(['0.0.0.0', '::'])

function forwardError(err: WarrenError): ForwardError {
  return { at: Date.now(), code: err.code, message: err.message }
}

function listenOn(server: Server, host: string, port: number, key: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new WarrenError(
          'ERR_LISTEN_FAILED',
          `cannot listen on ${key}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`,
          {
            hint: 'Choose another port, or stop what uses it.',
            cause: err,
          },
        ),
      ),
    )
    server.listen(port, host, () => resolve())
  })
}

export class Forwarder {
  readonly #pipe: PipeFn
  readonly #check: CheckFn
  readonly #log: Logger
  readonly #entries = new Map<string, Entry>()
  /** Forwards listening while their check runs, not yet in #entries. */
  readonly #pending = new Set<Entry>()
  /** Refuses local users other than the daemon's own (unless `proxy.allowOtherUsers`). */
  readonly #users: LocalUserGate
  /** One descriptor per client connection, under the process's open-file limit. */
  readonly #fds: DescriptorBudget
  /** Failed client connections, per forward and error code: one line, then a count once a minute. */
  readonly #refusals: LogThrottle

  constructor(
    pipe: PipeFn,
    check: CheckFn,
    log: Logger = () => {},
    opts: { allowOtherUsers?: boolean; descriptors?: DescriptorBudget } = {},
  ) {
    this.#pipe = pipe
    this.#check = check
    this.#log = log
    this.#users = new LocalUserGate({ allowOtherUsers: opts.allowOtherUsers === true, what: 'a forward', log })
    this.#fds = opts.descriptors ?? processDescriptors()
    this.#refusals = new LogThrottle({ intervalMs: 60_000, emit: (line) => log('warn', line) })
  }

  /**
   * Listens, checks the service and adds the forward. Throws ERR_BAD_ADDRESS, ERR_USAGE (a non-loopback listen
   * without `public`), ERR_FORWARD_EXISTS, ERR_LISTEN_FAILED and, when the check is awaited, ERR_UNKNOWN_SERVICE /
   * ERR_NOT_AUTHORIZED (the listener is closed again).
   */
  async add(spec: ForwardSpec, opts: AddOptions = {}): Promise<ForwardInfo> {
    const want = parseListenAddress(spec.listen)
    const key = formatListenAddress(want)
    const what = `the forward to ${spec.node}/${spec.service}`
    const remedy = 'Add --public to let other machines use it (for a forward in state.json: "public": true)'
    checkPublicListen(what, key, spec.public, remedy)
    if (want.port !== 0 && this.#entries.has(key)) {
      throw new WarrenError('ERR_FORWARD_EXISTS', `a forward already listens on ${key}`, {
        hint: `Remove it first with \`warren forward --remove ${key}\`, or choose another port.`,
      })
    }
    const server = createServer({ allowHalfOpen: true, noDelay: true })
    await listenOn(server, want.host, want.port, key)
    const addr = server.address()
    const listen =
      typeof addr === 'object' && addr !== null ? formatListenAddress({ host: want.host, port: addr.port }) : key
    const info: ForwardInfo = {
      listen,
      node: spec.node,
      service: spec.service,
      active: 0,
      total: 0,
      failed: 0,
      check: { state: spec.check === false ? 'skipped' : 'running' },
    }
    const entry: Entry = { info, addrs: spec.addrs, server, sockets: new Set() }
    // bound to one address: every accepted socket's own end is known without asking the socket
    const local =
      typeof addr === 'object' && addr !== null && isIP(addr.address) !== 0 && !WILDCARD.has(addr.address)
        ? { address: addr.address, port: addr.port }
        : undefined
    server.on('connection', (socket: Socket) => {
      const release = this.#fds.take()
      if (release === undefined) return this.#refuseAtFileLimit(entry, socket)
      socket.once('close', release)
      if (!this.#users.active) return this.#onConnection(entry, socket)
      // no 'data' listener yet: the socket buffers what the client sends until the pipe reads it
      socket.on('error', () => {})
      void this.#users.admit(socket, local).then((ok) => {
        if (ok === false) return
        if (entry.closed === true) socket.destroy()
        else this.#onConnection(entry, socket)
      })
    })
    server.on('error', (err) => this.#log('error', `forward ${listen}: ${err.message}`))
    if (info.check.state === 'running') {
      const wait = opts.waitForCheck !== false
      const checked = this.#runCheck(entry, wait)
      if (wait) {
        this.#pending.add(entry)
        const refusal = await checked.finally(() => this.#pending.delete(entry))
        if (refusal !== undefined) {
          await this.#close(entry)
          throw refusal
        }
        if (entry.closed === true) {
          throw new WarrenError('ERR_FORWARD_NOT_FOUND', `the forward on ${listen} was closed while being checked`, {
            hint: 'The daemon is stopping; add it again once it runs.',
          })
        }
      }
    }
    this.#entries.set(listen, entry)
    this.#log('info', `forward ${listen} → ${spec.node}/${spec.service}`)
    const warning = checkPublicListen(what, listen, spec.public, remedy)
    if (warning !== undefined) this.#log('warn', warning)
    return structuredClone(info)
  }

  /** Runs the check into `entry.info.check`; resolves with the error when it is a refusal and `refuse` is set. */
  async #runCheck(entry: Entry, refuse: boolean): Promise<WarrenError | undefined> {
    const { info } = entry
    try {
      await this.#check(info.node, info.service, entry.addrs)
      info.check = { state: 'ok', at: Date.now() }
      return undefined
    } catch (err) {
      const e = toWarrenError(err)
      const error = forwardError(e)
      info.check = { state: 'failed', at: error.at, error }
      const what = `forward ${info.listen} → ${info.node}/${info.service}`
      if (refuse && isRefusal(e)) {
        this.#log('info', `${what} not added: ${e.message}`)
        return e
      }
      this.#log('warn', `${what}: check failed: ${e.message}`)
      return undefined
    }
  }

  #onConnection(entry: Entry, socket: Socket): void {
    const { info } = entry
    entry.sockets.add(socket)
    info.active++
    info.total++
    socket.on('error', () => {}) // reported through the pipe
    this.#pipe(socket, info.node, info.service, entry.addrs)
      .then(
        (res) => {
          if (res.error !== undefined) this.#failed(entry, pipeEndError({ ...res, error: res.error }))
        },
        (err: unknown) => {
          const e = toWarrenError(err)
          this.#failed(entry, e)
          // a service that is down fails every connection: one line per forward and code, then a count a minute
          this.#refusals.log(
            `${info.listen} ${e.code}`,
            `forward ${info.listen} → ${info.node}/${info.service}: ${e.code}: ${e.message}`,
            `client connections of forward ${info.listen} failed with ${e.code}`,
          )
          // a reset, not a FIN: the client sees at once that no stream was opened (a limit, a refusal, no route)
          abortLocal(socket, e)
        },
      )
      .finally(() => {
        entry.sockets.delete(socket)
        info.active--
      })
  }

  /** A client past the open-file limit: reset at once, counted as failed, logged (throttled). */
  #refuseAtFileLimit(entry: Entry, socket: Socket): void {
    const { info } = entry
    const e = new WarrenError('ERR_FILE_LIMIT', `refused a client connection: ${this.#fds.describe()}`)
    info.total++
    this.#failed(entry, e)
    this.#refusals.log(
      `${info.listen} ${e.code}`,
      `forward ${info.listen} → ${info.node}/${info.service}: ${e.code}: ${e.message}`,
      `client connections of forward ${info.listen} failed with ${e.code}`,
    )
    socket.on('error', () => {})
    abortLocal(socket, e)
  }

  #failed(entry: Entry, err: WarrenError): void {
    entry.info.failed++
    entry.info.lastError = forwardError(err)
  }

  async remove(listen: string): Promise<void> {
    const key = formatListenAddress(parseListenAddress(listen))
    const entry = this.#entries.get(key)
    if (entry === undefined) {
      throw new WarrenError('ERR_FORWARD_NOT_FOUND', `no forward listens on ${key}`, {
        hint: 'List the forwards with `warren forward --list`.',
      })
    }
    this.#entries.delete(key)
    await this.#close(entry)
    this.#log('info', `forward ${entry.info.listen} removed`)
  }

  async #close(entry: Entry): Promise<void> {
    entry.closed = true
    const closed = new Promise<void>((resolve) => entry.server.close(() => resolve()))
    for (const s of entry.sockets) s.destroy()
    await closed
  }

  list(): ForwardInfo[] {
    return [...this.#entries.values()].map((e) => structuredClone(e.info))
  }

  async closeAll(): Promise<void> {
    this.#refusals.close()
    const all = [...this.#entries.values(), ...this.#pending]
    this.#entries.clear()
    this.#pending.clear()
    await Promise.all(all.map((e) => this.#close(e)))
  }
}
