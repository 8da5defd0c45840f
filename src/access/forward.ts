/**
 * Port forwards: a local TCP listener whose every connection becomes a service stream to a node.
 *
 * @example
 * ```ts
 * const fwd = new Forwarder((socket, node, service, addrs) => warren.pipeService(socket, node, service, { addrs }))
 * await fwd.add({ node: 'laptop', service: 'db', listen: '127.0.0.1:5432' })
 * ```
 */
import { createServer, type Server, type Socket } from 'node:net'
import { WarrenError } from '../errors.ts'
import type { ForwardInfo } from '../node/types.ts'
import { formatListenAddress, parseListenAddress } from './listen-address.ts'

export type PipeFn = (socket: Socket, node: string, service: string, addrs?: string[]) => Promise<void>
export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void

interface Entry {
  info: ForwardInfo
  addrs: string[] | undefined
  server: Server
  sockets: Set<Socket>
}

export class Forwarder {
  readonly #pipe: PipeFn
  readonly #log: LogFn
  readonly #entries = new Map<string, Entry>()

  constructor(pipe: PipeFn, log: LogFn = () => {}) {
    this.#pipe = pipe
    this.#log = log
  }

  async add(spec: { node: string; service: string; listen: string; addrs?: string[] }): Promise<ForwardInfo> {
    const want = parseListenAddress(spec.listen)
    const key = formatListenAddress(want)
    if (want.port !== 0 && this.#entries.has(key)) {
      throw new WarrenError('ERR_FORWARD_EXISTS', `a forward already listens on ${key}`, {
        hint: `Remove it first with \`warren forward --remove ${key}\`, or choose another port.`,
      })
    }
    const sockets = new Set<Socket>()
    const server = createServer({ allowHalfOpen: true, noDelay: true })
    await new Promise<void>((resolve, reject) => {
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
      server.listen(want.port, want.host, () => resolve())
    })
    const addr = server.address()
    const listen =
      typeof addr === 'object' && addr !== null ? formatListenAddress({ host: want.host, port: addr.port }) : key
    const info: ForwardInfo = { listen, node: spec.node, service: spec.service, active: 0, total: 0 }
    const entry: Entry = { info, addrs: spec.addrs, server, sockets }
    server.on('connection', (socket) => this.#onConnection(entry, socket))
    server.on('error', (err) => this.#log('error', `forward ${listen}: ${err.message}`))
    this.#entries.set(listen, entry)
    this.#log('info', `forward ${listen} → ${spec.node}/${spec.service}`)
    return { ...info }
  }

  #onConnection(entry: Entry, socket: Socket): void {
    entry.sockets.add(socket)
    entry.info.active++
    entry.info.total++
    socket.on('error', () => {}) // reported through the pipe
    this.#pipe(socket, entry.info.node, entry.info.service, entry.addrs)
      .catch((err: Error) => {
        this.#log('warn', `forward ${entry.info.listen} → ${entry.info.node}/${entry.info.service}: ${err.message}`)
        socket.destroy()
      })
      .finally(() => {
        entry.sockets.delete(socket)
        entry.info.active--
      })
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
    const closed = new Promise<void>((resolve) => entry.server.close(() => resolve()))
    for (const s of entry.sockets) s.destroy()
    await closed
  }

  list(): ForwardInfo[] {
    return [...this.#entries.values()].map((e) => ({ ...e.info }))
  }

  async closeAll(): Promise<void> {
    const all = [...this.#entries.values()]
    this.#entries.clear()
    await Promise.all(all.map((e) => this.#close(e)))
  }
}
