/**
 * Who may hold a connection to the access port: local users other than the daemon's own are refused (Linux,
 * unless `proxy.allowOtherUsers`), and connections are capped in all (`proxy.maxConnections`) and per client
 * (`proxy.maxConnectionsPerClient`: one local user on Linux, else one remote address), and by the process's
 * open-file limit (src/open-files.ts). A refused connection is closed at once, and logged at `warn` at most once a
 * minute per cause.
 */

import type { Socket } from 'node:net'
import type { Logger } from '../log.ts'
import { type DescriptorBudget, processDescriptors } from '../open-files.ts'
import { CAN_CHECK_LOCAL_USERS, LocalUserGate, peerUid } from './local-user.ts'

export interface AccessGuardOptions {
  allowOtherUsers: boolean
  maxConnections: number
  maxConnectionsPerClient: number
  log?: Logger
  /** One descriptor per connection, under the open-file limit (default: the process's). */
  descriptors?: DescriptorBudget
}

const WARN_EVERY_MS = 60_000

export class AccessGuard {
  readonly #opts: AccessGuardOptions
  readonly #users: LocalUserGate
  readonly #perClient = new Map<string, number>()
  readonly #warned = new Map<string, number>()
  readonly #fds: DescriptorBudget
  #total = 0

  constructor(opts: AccessGuardOptions) {
    this.#opts = opts
    this.#fds = opts.descriptors ?? processDescriptors()
    this.#users = new LocalUserGate({
      allowOtherUsers: opts.allowOtherUsers,
      what: 'the access port',
      ...(opts.log === undefined ? {} : { log: opts.log }),
    })
  }

  /** Connections held now. */
  get total(): number {
    return this.#total
  }

  /**
   * Counts `socket` (accepted with `pauseOnConnect`) and calls `serve` once it may be served, then resumes it;
   * destroys it otherwise.
   */
  accept(socket: Socket, serve: (socket: Socket) => void): void {
    socket.on('error', () => {})
    if (this.#total >= this.#opts.maxConnections) {
      this.#refuse(socket, 'total', `${this.#opts.maxConnections} connections are open (proxy.maxConnections)`)
      return
    }
    const release = this.#fds.take()
    if (release === undefined) {
      this.#refuse(socket, 'files', `ERR_FILE_LIMIT: ${this.#fds.describe()}`)
      return
    }
    socket.once('close', release)
    this.#total++
    let client: string | undefined
    socket.once('close', () => {
      this.#total--
      if (client === undefined) return
      const n = (this.#perClient.get(client) ?? 1) - 1
      if (n <= 0) this.#perClient.delete(client)
      else this.#perClient.set(client, n)
    })
    const admitted = (uid: number | undefined): void => {
      if (socket.destroyed) return
      const key = uid === undefined ? `address ${socket.remoteAddress ?? '?'}` : `uid ${uid}`
      const n = this.#perClient.get(key) ?? 0
      if (n >= this.#opts.maxConnectionsPerClient) {
        this.#refuse(
          socket,
          key,
          `${key} holds ${n} connections (proxy.maxConnectionsPerClient is ${this.#opts.maxConnectionsPerClient})`,
        )
        return
      }
      client = key
      this.#perClient.set(key, n + 1)
      serve(socket)
      socket.resume() // the server listens with pauseOnConnect: reading starts once `serve` has its listeners on
    }
    if (!this.#users.active) {
      // every local user may connect, but each is still counted on its own where the platform tells them apart
      if (CAN_CHECK_LOCAL_USERS) peerUid(socket).then(admitted, () => admitted(undefined))
      else admitted(undefined)
      return
    }
    void this.#users.admit(socket).then((uid) => {
      if (uid !== false) admitted(uid)
    })
  }

  #refuse(socket: Socket, cause: string, why: string): void {
    socket.destroy()
    const now = Date.now()
    const last = this.#warned.get(cause)
    if (last !== undefined && now - last < WARN_EVERY_MS) return
    if (this.#warned.size > 1024) this.#warned.clear()
    this.#warned.set(cause, now)
    this.#opts.log?.('warn', `the access port refused a connection: ${why}`)
  }
}
