/**
 * The direct-path upgrade: over an existing connection (usually relayed), two nodes exchange their STUN-learned UDP
 * mappings on `/warren/punch/1.0.0`, punch their NATs from the udx transport's own socket, and one of them dials the
 * other through the udx transport, so the new connection gets Noise and Yamux from libp2p's upgrader. The relayed
 * connection is left alone; the caller moves new streams to the direct one.
 *
 * When both nodes learned a TCP mapping too (STUN over TCP), they first try TCP while the UDP probes run alongside:
 * a simultaneous open between the two mappings when both NATs map TCP endpoint-independently (tcp-punch.ts), the
 * birthday method with SYNs when one is symmetric (tcp-birthday.ts). A TCP path carries about twice the throughput
 * of UDX for the same CPU. If no TCP connection stands within {@link TCP_PUNCH_TIMEOUT_MS} (birthday:
 * {@link TCP_BIRTHDAY_TIMEOUT_MS}), the UDX path is taken as before.
 *
 * ```ts
 * handleDirectPath(node, { hub, stunServers })                    // on every node, once
 * const { connection, plan, ms } = await upgradeToDirect(node, relayedConn, { hub, stunServers })
 * ```
 *
 * Who dials: the initiator when both NATs map endpoint-independently; the easy side when one NAT is symmetric (its
 * single socket is the one the transport dials from; the hard side's winning socket is one of its birthday sockets).
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../../errors.ts'
import type { UdxEndpoint } from '../../p2p/udx/endpoint.ts'
import type { Endpoint, PacketSocket } from '../../p2p/udx/packet-socket.ts'
import { type UdxHub, udpEndpointOf } from '../../p2p/udx/transport.ts'
import { learnNat, type NatReport, requirePrimary } from '../net-report/nat-report.ts'
import { PUNCH_REFUSED } from '../punch/gate.ts'
import {
  decodePunchMessage,
  encodePunchMessage,
  MAX_PUNCH_MESSAGE,
  PUNCH_PROTOCOL,
  type PunchMessage,
} from '../punch/messages.ts'
import { type NatBehaviour, type PunchPlan, punch, punchPlan } from '../punch/punch.ts'
import { TCP_PUNCH_TIMEOUT_MS, tcpMultiaddr, upgradeTcpSocket } from '../punch/tcp-punch.ts'
import { endpointOf, startTcp, tcpOffer, tcpPlan } from './tcp-plan.ts'

export interface DirectPathOptions {
  hub: UdxHub
  /** STUN servers (the relays' STUN ports). Two or more detect symmetric NATs; with one, the NAT is taken as easy. */
  stunServers: readonly Endpoint[]
  /** Bound on the whole upgrade (default 15 s). */
  timeoutMs?: number
  /** Sockets the hard side of a birthday attempt opens (default 256). */
  birthdaySockets?: number
  /** Random probes the easy side of a birthday attempt sends at most (default 768). */
  maxProbes?: number
  /** Bound on the punching itself (default 10 s; 2 s when both NATs are hard). */
  punchTimeoutMs?: number
  /** Try a TCP simultaneous open before UDX when both NATs allow it (default true). */
  tcp?: boolean
  /** Bound on the TCP attempt (default {@link TCP_PUNCH_TIMEOUT_MS}). */
  tcpTimeoutMs?: number
  /** Where the upgrade tells what it tried (debug lines). */
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void
  signal?: AbortSignal
}

export interface DirectPathResult {
  connection: Connection
  /** `tcp`: a TCP simultaneous open, `tcp-birthday`: TCP through a symmetric NAT; the others are UDX punch plans. */
  plan: PunchPlan | 'tcp' | 'tcp-birthday'
  /** From the start of the upgrade to an upgraded direct connection. */
  ms: number
  remote: Endpoint
}

interface Channel {
  send(msg: PunchMessage): Promise<void>
  next(): Promise<PunchMessage>
}

function channel(stream: Stream, signal: AbortSignal): Channel {
  const lp = lpStream(stream, { maxDataLength: MAX_PUNCH_MESSAGE })
  return {
    send: (msg) => lp.write(encodePunchMessage(msg), { signal }),
    next: async () => decodePunchMessage((await lp.read({ signal })).subarray()),
  }
}

function waitForConnection(node: Libp2p, peer: PeerId, at: Endpoint, signal: AbortSignal): Promise<Connection> {
  const find = (): Connection | undefined =>
    node.getConnections(peer).find((c) => {
      const e = udpEndpointOf(c.remoteAddr)
      return c.status === 'open' && e !== undefined && e.host === at.host && e.port === at.port
    })
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const c = find()
      if (c === undefined) return
      cleanup()
      resolve(c)
    }
    const onAbort = (): void => {
      cleanup()
      reject(signal.reason)
    }
    const cleanup = (): void => {
      node.removeEventListener('connection:open', check)
      signal.removeEventListener('abort', onAbort)
    }
    node.addEventListener('connection:open', check)
    signal.addEventListener('abort', onAbort)
    check()
  })
}

/** Both roles after the offer/answer exchange: punch, then dial or wait for the dialer's `direct`. */
async function punchAndConnect(
  node: Libp2p,
  chan: Channel,
  remotePeer: PeerId,
  initiator: boolean,
  local: NatReport,
  remote: { mapped: Endpoint; nat: NatBehaviour; token: string; tcp?: Endpoint; tcpNat?: NatBehaviour },
  opts: DirectPathOptions,
  signal: AbortSignal,
  started: number,
): Promise<DirectPathResult> {
  const hub = opts.hub
  const plan = punchPlan(local.nat, remote.nat)
  const armed = plan === 'birthday-easy' ? chan.next() : undefined
  // TCP first when the NATs allow it; the UDP probes below run alongside as the fallback
  const upgrader = hub.upgrader
  const tcpTry = startTcp(plan, local, remote, opts, armed, signal)
  const tcpUpgrade = (dialer: boolean): Promise<Connection | undefined> =>
    tcpTry === undefined || upgrader === undefined
      ? Promise.resolve(undefined)
      : tcpTry.socket.then(async (socket) => {
          if (socket === undefined) return undefined
          // the far end as connected: for the easy side of a birthday, the port its probe hit
          const at = { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }
          const connection = await upgradeTcpSocket(node, upgrader, socket, { dialer, remote: at, signal })
          if (!connection.remotePeer.equals(remotePeer)) {
            await connection.close()
            throw new Error(`the node at ${tcpMultiaddr(at)} is ${connection.remotePeer}, not ${remotePeer}`)
          }
          return connection
        })
  const extras: UdxEndpoint[] = []
  const sockets: PacketSocket[] = [requirePrimary(hub).packets]
  if (plan === 'birthday-hard') {
    for (let i = 1; i < (opts.birthdaySockets ?? 256); i++) {
      const ep = hub.extraEndpoint()
      extras.push(ep)
      sockets.push(ep.packets)
    }
  }
  const session = punch({
    plan,
    sockets,
    token: Buffer.from(remote.token, 'hex'),
    remote: remote.mapped,
    timeoutMs: local.nat === 'hard' && remote.nat === 'hard' ? 2000 : (opts.punchTimeoutMs ?? 10_000),
    maxProbes: plan === 'birthday-easy' ? opts.maxProbes : undefined,
    probeAfter: armed?.then((m) => {
      if (m.type !== 'armed') throw new WarrenError('ERR_PROTOCOL', `expected 'armed' from the peer, got '${m.type}'`)
    }),
    signal,
  })
  let winner: UdxEndpoint | undefined
  try {
    if (plan === 'birthday-hard') await chan.send({ type: 'armed' })
    const dialer = plan === 'simultaneous' ? initiator : plan === 'birthday-easy'
    if (dialer && tcpTry !== undefined) {
      // a TCP connection that fails to upgrade (say the peer's socket saw another SYN first) falls back to UDX
      const tcpStarted = performance.now()
      const connection = await tcpUpgrade(true).catch((err: Error) => {
        opts.log?.('debug', `TCP ${tcpPlan(plan)} to ${remotePeer} did not upgrade: ${err.message}`)
        return undefined
      })
      if (connection === undefined) {
        const ms = Math.round(performance.now() - tcpStarted)
        opts.log?.('debug', `no TCP path (${tcpPlan(plan)}) to ${remotePeer} after ${ms} ms; trying UDX`)
      } else {
        await chan.send({ type: 'direct', addr: connection.remoteAddr.toString() })
        return { connection, plan: tcpPlan(plan), ms: performance.now() - started, remote: endpointOf(connection) }
      }
    }
    if (dialer) {
      let result: Awaited<typeof session.result>
      try {
        result = await session.result
      } catch (err) {
        await chan.send({ type: 'failed', reason: (err as Error).message }).catch(() => undefined)
        throw noPath(err, remotePeer)
      }
      const { host, port } = result.remote
      // no /p2p/ part: libp2p's dial queue would join this dial to any dial to the same peer still under way (say
      // a direct TCP address that never answers, for its full time-out); the peer's identity is checked below
      const ma = multiaddr(`/ip${host.includes(':') ? 6 : 4}/${host}/udp/${port}`)
      let connection: Connection
      try {
        connection = await node.dial(ma, { signal, force: true })
        if (!connection.remotePeer.equals(remotePeer)) {
          await connection.close()
          throw new Error(`the node at ${ma} is ${connection.remotePeer}, not ${remotePeer}`)
        }
      } catch (err) {
        await chan
          .send({ type: 'failed', reason: `dial ${ma} failed: ${(err as Error).message}` })
          .catch(() => undefined)
        throw noPath(err, remotePeer)
      }
      await chan.send({ type: 'direct', addr: ma.toString() })
      return { connection, plan, ms: performance.now() - started, remote: result.remote }
    }
    // Not the dialer: keep answering probes until the dialer reports; our own punch result does not decide.
    session.result.catch(() => undefined)
    const tcpConnection = tcpUpgrade(false).catch(() => undefined)
    const msg = await chan.next()
    if (msg.type === 'direct' && msg.addr.includes('/tcp/')) {
      const connection = await tcpConnection
      if (connection === undefined)
        throw noPath(new Error(`the TCP connection from ${msg.addr} did not come up`), remotePeer)
      return { connection, plan: tcpPlan(plan), ms: performance.now() - started, remote: endpointOf(connection) }
    }
    // the dialer took UDX: a TCP connection that came up on our side only is dropped
    tcpTry?.cancel()
    void tcpConnection.then((c) => c?.abort(new Error('the peer took the UDX path')))
    if (msg.type !== 'direct') {
      throw new WarrenError(
        'ERR_NO_DIRECT_PATH',
        `no direct path to ${remotePeer}: ${msg.type === 'failed' ? msg.reason : msg.type}`,
        {
          hint: 'Both NATs may map each destination to a new port (symmetric); the relayed connection stays in use.',
        },
      )
    }
    const result = await session.result.catch(() => undefined)
    if (result !== undefined) winner = extras[result.socketIndex - 1]
    const at = result?.remote ?? remote.mapped
    const connection = await waitForConnection(node, remotePeer, at, signal)
    return { connection, plan, ms: performance.now() - started, remote: at }
  } finally {
    session.stop()
    tcpTry?.cancel()
    // the birthday's other sockets close in the background: one by one they took ~10 ms each (2.5 s for 255)
    void Promise.allSettled(extras.filter((ep) => ep !== winner).map((ep) => hub.release(ep)))
  }
}

function noPath(err: unknown, peer: PeerId): WarrenError {
  if (err instanceof WarrenError && err.code === 'ERR_NO_DIRECT_PATH') return err
  return new WarrenError('ERR_NO_DIRECT_PATH', `no direct path to ${peer}: ${(err as Error).message}`, {
    hint: 'Both NATs may map each destination to a new port (symmetric); the relayed connection stays in use.',
    cause: err,
  })
}

function deadline(opts: DirectPathOptions): AbortSignal {
  const t = AbortSignal.timeout(opts.timeoutMs ?? 15_000)
  return opts.signal === undefined ? t : AbortSignal.any([t, opts.signal])
}

/** Initiator: upgrades `via` (a connection to the peer, usually relayed) to a direct UDX connection. */
export async function upgradeToDirect(
  node: Libp2p,
  via: Connection,
  opts: DirectPathOptions,
): Promise<DirectPathResult> {
  const started = performance.now()
  const signal = deadline(opts)
  const local = await learnNat(opts.hub, opts.stunServers, signal, opts.tcp !== false)
  const stream = await via.newStream(PUNCH_PROTOCOL, { signal, runOnLimitedConnection: true }).catch((err: unknown) => {
    local.tcp?.close()
    throw err
  })
  try {
    const chan = channel(stream, signal)
    const token = randomBytes(16).toString('hex')
    await chan.send({ type: 'offer', token, mapped: local.mapped, nat: local.nat, ...tcpOffer(local) })
    const answer = await chan.next()
    if (answer.type === 'failed') {
      const refused = answer.reason.startsWith(PUNCH_REFUSED)
      throw new WarrenError(
        'ERR_NO_DIRECT_PATH',
        `no direct path to ${via.remotePeer}: the peer said: ${answer.reason}`,
        {
          hint: refused
            ? 'The peer answers punch requests only from nodes it knows, or for its public services, a few a minute; the relayed connection stays in use.'
            : 'The peer cannot punch (no UDP listener or STUN server); the relayed connection stays in use.',
          ...(refused ? { details: { refused: true } } : {}),
        },
      )
    }
    if (answer.type !== 'answer') {
      throw new WarrenError('ERR_PROTOCOL', `expected 'answer' from the peer, got '${answer.type}'`, {
        hint: 'The peer runs an incompatible Warren version; upgrade both nodes.',
      })
    }
    try {
      return await punchAndConnect(node, chan, via.remotePeer, true, local, { ...answer, token }, opts, signal, started)
    } catch (err) {
      // which NATs the punch met, so that the caller can tell a miss worth retrying from a hopeless pair
      const why = signal.aborted ? new Error(`timed out after ${opts.timeoutMs ?? 15_000} ms`) : err
      const e = err instanceof WarrenError ? err : noPath(why, via.remotePeer)
      throw new WarrenError(e.code, e.message, {
        ...(e.hint === undefined ? {} : { hint: e.hint }),
        details: { ...e.details, nats: { local: local.nat, remote: answer.nat } },
        cause: e.cause ?? e,
      })
    }
  } catch (err) {
    if (signal.aborted && !(err instanceof WarrenError))
      throw noPath(new Error(`timed out after ${opts.timeoutMs ?? 15_000} ms`), via.remotePeer)
    throw err
  } finally {
    local.tcp?.close()
    await stream.close().catch(() => stream.abort(new Error('punch stream closed')))
  }
}

/**
 * Responder: answers `/warren/punch/1.0.0` on every connection (at most `maxConcurrent` at once, default 4). `admit`
 * (src/traversal/punch/gate.ts) decides first: a request it refuses gets a `failed` message with its reason, and no
 * STUN request, probe or connect is made for it.
 */
export async function handleDirectPath(
  node: Libp2p,
  opts: DirectPathOptions & {
    maxConcurrent?: number
    onResult?: (r: DirectPathResult | Error) => void
    admit?: (peer: PeerId) => string | undefined
  },
): Promise<void> {
  let running = 0
  await node.handle(
    PUNCH_PROTOCOL,
    async (stream, connection) => {
      const refusal = opts.admit?.(connection.remotePeer)
      if (refusal !== undefined) {
        await refuse(stream, refusal)
        opts.onResult?.(
          new WarrenError('ERR_NO_DIRECT_PATH', `refused a punch request from ${connection.remotePeer}: ${refusal}`),
        )
        return
      }
      if (running >= (opts.maxConcurrent ?? 4)) {
        stream.abort(new Error('too many direct-path upgrades at once'))
        return
      }
      running++
      const started = performance.now()
      const signal = deadline(opts)
      const chan = channel(stream, signal)
      let local: NatReport | undefined
      try {
        const offer = await chan.next()
        if (offer.type !== 'offer') throw new WarrenError('ERR_PROTOCOL', `expected 'offer', got '${offer.type}'`)
        // no TCP attempt unless the initiator offers one
        local = await learnNat(opts.hub, opts.stunServers, signal, opts.tcp !== false && offer.tcp !== undefined)
        await chan.send({ type: 'answer', mapped: local.mapped, nat: local.nat, ...tcpOffer(local) })
        const r = await punchAndConnect(node, chan, connection.remotePeer, false, local, offer, opts, signal, started)
        opts.onResult?.(r)
        await stream.close()
      } catch (err) {
        opts.onResult?.(err as Error)
        await chan.send({ type: 'failed', reason: (err as Error).message }).catch(() => undefined)
        await stream.close().catch(() => stream.abort(err as Error))
      } finally {
        local?.tcp?.close()
        running--
      }
    },
    { runOnLimitedConnection: true },
  )
}

/** Reads the offer (within 5 s) and answers `failed` with `reason`: the asker learns why, and nothing is punched. */
async function refuse(stream: Stream, reason: string): Promise<void> {
  const signal = AbortSignal.timeout(5_000)
  const chan = channel(stream, signal)
  try {
    await chan.next()
    await chan.send({ type: 'failed', reason })
    await stream.close({ signal })
  } catch (err) {
    stream.abort(err as Error)
  }
}
