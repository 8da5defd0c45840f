/**
 * Direct paths for a node: whenever this node dials a peer and gets a relayed connection, try to upgrade it to a
 * direct connection in the background (`/warren/punch/1.0.0`, see attempt.ts), and answer the peer's own attempts. The
 * relayed connection stays open as the fallback; new streams move to the direct one as soon as it exists
 * (src/p2p/path.ts prefers direct connections), streams already open on the relay finish there.
 *
 * This class wires the node's events to upgrade attempts; the parts live next to it: the STUN servers learned from the
 * relays (stun-servers.ts), the watches that notice a dead direct path (liveness.ts), when to try again (schedule.ts),
 * and the status per peer (peer-state.ts).
 *
 * A direct path can die later: a NAT forgets or changes its mapping (router restart, flushed or expired conntrack
 * entry). The same NAT may have dropped the relay connections: as soon as the direct path's data goes unacknowledged
 * past a retransmission time-out, this node's relay connections and the relayed connections to the peer are checked
 * (one ping each; circuit-check.ts), so reservations come back and a dead circuit is replaced while the direct path is
 * still being judged. When a relayed connection to the peer is still open, the status turns `relayed` (new streams take the relay)
 * and the side that dialed the relayed connection punches again at once, then after 1, 2, 4, 8 and 16 s, at most
 * {@link REPUNCH_ATTEMPTS} times. A first upgrade that fails is tried again after 1 s and 30 s
 * ({@link FIRST_RETRIES}), unless both NATs map each destination to a new port (symmetric × symmetric), where no
 * punch can meet.
 *
 * @example
 * ```ts
 * const paths = new DirectPaths(libp2p, hub, { relays: config.relays, log })
 * await paths.start()
 * paths.status()   // { '12D3KooW…': { state: 'direct', plan: 'simultaneous', ms: 71 } }
 * ```
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { toWarrenError, WarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { isRelayed } from '../../p2p/path.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { UdxHub } from '../../p2p/udx/transport.ts'
import { type NetcheckReport, netcheck } from '../net-report/netcheck.ts'
import { PUNCH_PROTOCOL } from '../punch/messages.ts'
import { handleDirectPath, upgradeToDirect } from './attempt.ts'
import { CircuitCheck } from './circuit-check.ts'
import { isPunched, Liveness } from './liveness.ts'
import { PeerStates } from './peer-state.ts'
import {
  FIRST_RETRIES,
  firstRetryDelay,
  hopeless,
  REPUNCH_ATTEMPTS,
  REPUNCH_BOUNDS,
  refused,
  repunchDelay,
} from './schedule.ts'
import { StunServers } from './stun-servers.ts'
import type { DirectPathOptions, DirectPathResult, DirectPathStatus, DirectPathsOptions } from './types.ts'

/** The STUN servers a failed upgrade could not test (`details.untested`), for the status. */
function untestedOf(e: WarrenError): { untested?: string[] } {
  const u = e.details?.untested
  return Array.isArray(u) && u.length > 0 ? { untested: u.map(String) } : {}
}

export class DirectPaths {
  readonly hub: UdxHub
  readonly #libp2p: WarrenLibp2p
  readonly #opts: DirectPathsOptions
  readonly #log: Logger
  readonly #peers = new PeerStates()
  readonly #stun: StunServers
  readonly #liveness: Liveness
  readonly #circuits: CircuitCheck
  #stopped = false

  constructor(libp2p: WarrenLibp2p, hub: UdxHub, opts: DirectPathsOptions) {
    this.#libp2p = libp2p
    this.hub = hub
    this.#opts = opts
    this.#log = opts.log ?? (() => {})
    this.#stun = new StunServers(libp2p, opts.relays, this.#log)
    this.#circuits = new CircuitCheck(libp2p, this.#log)
    this.#liveness = new Liveness(libp2p, hub, opts.silentMs, (conn, why) => this.#onSuspect(conn, why))
  }

  /** The STUN servers known so far (the responder side reads them when a peer's offer arrives). */
  stunServers(): Endpoint[] {
    return this.#stun.list()
  }

  /** Options whose `stunServers` is read live (a getter: never spread this object, that would freeze it). */
  #pathOptions<T extends object>(extra: T = {} as T): DirectPathOptions & T {
    const self = this
    return Object.assign(
      {
        hub: this.hub,
        get stunServers() {
          return self.stunServers()
        },
        timeoutMs: this.#opts.timeoutMs ?? 15_000,
        tcp: this.#opts.tcp !== false,
        log: this.#log,
        ...(this.#opts.portMapped === undefined ? {} : { portMapped: this.#opts.portMapped }),
      },
      extra,
    )
  }

  async start(): Promise<void> {
    await handleDirectPath(
      this.#libp2p,
      this.#pathOptions({
        ...(this.#opts.admit === undefined ? {} : { admit: this.#opts.admit }),
        onResult: (r: DirectPathResult | Error) => {
          if (r instanceof Error) {
            this.#log('debug', `direct path asked by a peer: ${r.message}`)
            return
          }
          const peer = r.connection.remotePeer
          this.#peers.record(peer, {
            state: 'direct',
            plan: r.plan,
            ms: Math.round(r.ms),
            lost: this.#peers.lost(peer),
          })
          this.#closeOthers(r.connection)
        },
      }),
    )
    this.#libp2p.addEventListener('connection:open', this.#onOpen)
    this.#libp2p.addEventListener('connection:close', this.#onClose)
    this.#liveness.start()
    // learn the relays' STUN responders early, so this node can answer a peer's punch at once
    this.#stun.start()
  }

  readonly #onOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    // the dialing side starts the upgrade, so two nodes never punch toward each other twice at once
    if (this.#stopped || !isRelayed(conn) || conn.direction !== 'outbound') return
    void this.upgrade(conn.remotePeer)
  }

  /**
   * A direct connection closed. When a relayed one to the peer stays open and no other direct one does, the direct path
   * is lost: new streams take the relay, and the side that dialed the relayed connection punches again.
   */
  readonly #onClose = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    const peer = conn.remotePeer
    const silent = this.#liveness.takeReason(conn)
    if (this.#stopped) return
    // the NAT that dropped this path's mapping may have dropped the relay connections too: checked alongside
    if (silent !== undefined) {
      this.#opts.onSilentPath?.(`the direct path to ${peer} went silent (${silent})`)
      this.#circuits.check(peer, 'its direct path went silent')
    }
    const open = this.#libp2p.getConnections(peer).filter((c) => c.status === 'open')
    const why = `direct path lost (${silent ?? 'the connection closed'})`
    if (open.length === 0) {
      // no connection to the peer is left (its relayed one was closed too): the next stream reaches it again, and a
      // new upgrade starts from there
      if (isPunched(conn)) this.#log('info', `${why} to ${peer}; no connection left, the next stream dials it again`)
      this.#peers.cancel(peer)
      this.#peers.forget(peer)
      return
    }
    if (!isPunched(conn) || open.some((c) => !isRelayed(c))) return
    const lost = (this.#peers.lost(peer) ?? 0) + 1
    this.#peers.record(peer, { state: 'relayed', reason: `${why}; new streams use the relay`, lost })
    this.#log('info', `${why} to ${peer}; new streams use the relay`)
    if (open.some((c) => isRelayed(c) && c.direction === 'outbound')) this.#scheduleRepunch(peer, 1)
  }

  /**
   * A direct path's data went unacknowledged past a retransmission time-out: the NAT that dropped its mapping may have
   * dropped the relay connections too. Checked at once, alongside, while the watch decides about the direct path:
   * this node's relay connections (`onSilentPath`) and the relayed connections to the peer (circuit-check.ts).
   */
  #onSuspect(conn: Connection, why: string): void {
    if (this.#stopped) return
    const peer = conn.remotePeer
    this.#log('debug', `direct path to ${peer} suspect: ${why}`)
    this.#opts.onSilentPath?.(`the direct path to ${peer} is not acknowledged (${why})`)
    this.#circuits.check(peer, 'its direct path went unacknowledged')
  }

  /** Re-punch `attempt` after a lost path: the first at once, the others after {@link repunchDelay}. */
  #scheduleRepunch(peer: PeerId, attempt: number): void {
    const run = (): void => {
      if (!this.#stopped) void this.upgrade(peer, attempt)
    }
    if (attempt === 1) {
      this.#peers.cancel(peer)
      run()
      return
    }
    this.#peers.schedule(peer, repunchDelay(attempt), run)
  }

  /** After a (re-)punch: older direct connections to the peer (a dead path the watch has not closed yet) go. */
  #closeOthers(keep: Connection): void {
    for (const c of this.#libp2p.getConnections(keep.remotePeer)) {
      if (c !== keep && c.status === 'open' && isPunched(c))
        void c.close().catch(() => c.abort(new Error('superseded')))
    }
  }

  /**
   * Upgrades the relayed connection to `peer`, unless a direct one exists or an upgrade already runs. `attempt` counts
   * re-punches after a lost direct path; a failed one schedules the next, up to {@link REPUNCH_ATTEMPTS}.
   */
  upgrade(peer: PeerId, attempt?: number, retry = 0): Promise<void> {
    return this.#peers.once(peer, () => this.#upgrade(peer, attempt, retry))
  }

  async #upgrade(peer: PeerId, attempt: number | undefined, retry: number): Promise<void> {
    const conns = this.#libp2p.getConnections(peer).filter((c) => c.status === 'open')
    const via = conns.find(isRelayed)
    if (via === undefined || conns.some((c) => !isRelayed(c))) return
    const lost = this.#peers.lost(peer)
    const again = attempt === undefined ? (retry === 0 ? {} : { retry }) : { attempt, lost }
    this.#peers.record(peer, { state: 'upgrading', ...again })
    await this.#stun.learnFrom(via)
    if (this.stunServers().length === 0) {
      this.#peers.record(peer, {
        state: 'relayed',
        reason: 'no STUN server: the relays answer no STUN requests',
        ...again,
      })
      return
    }
    try {
      const bounds = attempt === undefined ? {} : REPUNCH_BOUNDS
      const r = await upgradeToDirect(this.#libp2p, via, this.#pathOptions(bounds))
      const untested = r.untested === undefined ? {} : { untested: r.untested }
      this.#peers.record(peer, { state: 'direct', plan: r.plan, ms: Math.round(r.ms), ...again, ...untested })
      const what = attempt === undefined ? 'direct path' : `direct path again (re-punch ${attempt})`
      const without = r.untested === undefined ? '' : `; not tested, no STUN answer: ${r.untested.join(', ')}`
      this.#log(
        'info',
        `${what} to ${peer} (${r.plan}) in ${Math.round(r.ms)} ms: ${r.connection.remoteAddr}${without}`,
      )
    } catch (err) {
      const e = toWarrenError(err)
      if (attempt === undefined) this.#firstFailed(peer, retry, e)
      else this.#repunchFailed(peer, attempt, lost, e)
    }
  }

  /** A first upgrade (or its retry `retry`) failed: stay on the relay, and try again unless no punch can meet. */
  #firstFailed(peer: PeerId, retry: number, e: WarrenError): void {
    const next = retry + 1
    const again = { ...(retry === 0 ? {} : { retry }), ...untestedOf(e) }
    if (hopeless(e) || !this.#relayed(peer) || next > FIRST_RETRIES || this.#stopped) {
      this.#peers.record(peer, { state: 'relayed', reason: e.message, ...again })
      this.#log('info', `no direct path to ${peer}, staying on the relay: ${e.message}`)
      return
    }
    const delay = firstRetryDelay(next)
    this.#peers.record(peer, { state: 'relayed', reason: e.message, ...again, retryAt: Date.now() + delay })
    this.#log('info', `no direct path to ${peer} yet (${e.message}); trying again in ${delay / 1000} s`)
    this.#peers.schedule(peer, delay, () => {
      if (!this.#stopped) void this.upgrade(peer, undefined, next)
    })
  }

  /** Re-punch `attempt` (`lost` paths lost so far) failed: stay on the relay, and schedule the next unless last. */
  #repunchFailed(peer: PeerId, attempt: number, lost: number | undefined, e: WarrenError): void {
    if (!this.#relayed(peer)) {
      this.#peers.forget(peer) // the peer is gone meanwhile: nothing to retry
      return
    }
    const last = attempt >= REPUNCH_ATTEMPTS || this.#stopped || refused(e)
    const reason = `direct path lost; re-punch ${attempt} of ${REPUNCH_ATTEMPTS} failed: ${e.message}`
    const retryAt = last ? {} : { retryAt: Date.now() + repunchDelay(attempt + 1) }
    this.#peers.record(peer, { state: 'relayed', reason, attempt, lost, ...retryAt, ...untestedOf(e) })
    this.#log('info', `${reason}${last ? '; staying on the relay' : ''}`)
    if (!last) this.#scheduleRepunch(peer, attempt + 1)
  }

  /** Whether a relayed connection to `peer` is open. */
  #relayed(peer: PeerId): boolean {
    return this.#libp2p.getConnections(peer).some((c) => c.status === 'open' && isRelayed(c))
  }

  /** `warren netcheck` from the socket direct paths use, against every relay's STUN responder. */
  async netcheck(): Promise<NetcheckReport> {
    await this.#stun.learnAll()
    const primary = this.hub.primary()
    if (primary === undefined) {
      throw new WarrenError('ERR_NO_DIRECT_PATH', 'the node has no UDP socket for direct paths', {
        hint: 'Set traversal.udpListen in config.json (default /ip4/0.0.0.0/udp/0).',
      })
    }
    return netcheck(primary.packets, this.stunServers())
  }

  /** The latest upgrade outcome per peer (base58 id). */
  status(): Record<string, DirectPathStatus> {
    return this.#peers.all()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#stun.stop()
    this.#liveness.stop()
    this.#peers.cancelAll()
    this.#libp2p.removeEventListener('connection:open', this.#onOpen)
    this.#libp2p.removeEventListener('connection:close', this.#onClose)
    await this.#libp2p.unhandle(PUNCH_PROTOCOL).catch(() => undefined)
    await this.#peers.settled()
    await this.hub.closeAll()
  }
}
