/**
 * The direct-path upgrade: over an existing connection (usually relayed), two nodes exchange their STUN-learned
 * mappings on `/warren/punch/1.0.0`, then run every strategy that fits their NATs at once (strategy.ts): TCP first
 * when both learned a TCP mapping (tcp-strategy.ts), the UDX punch alongside as the fallback (udx-strategy.ts). The
 * dialer takes the first strategy that connects and names it in a `direct` message; the other side takes the
 * connection that message names. The relayed connection is left alone; the caller moves new streams to the direct one.
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
import { WarrenError } from '../../errors.ts'
import { learnNat, type NatReport } from '../net-report/nat-report.ts'
import { PUNCH_REFUSED } from '../punch/gate.ts'
import { PUNCH_PROTOCOL } from '../punch/messages.ts'
import { punchPlan } from '../punch/punch.ts'
import { channel } from './channel.ts'
import { mappedPhase } from './mapped-strategy.ts'
import { type Attempt, noPath, noPathBecause, type Strategy } from './strategy.ts'
import { tcpOffer, tcpStrategy } from './tcp-strategy.ts'
import type { DirectPathOptions, DirectPathResult } from './types.ts'
import { udxStrategy } from './udx-strategy.ts'

/**
 * Both roles after the offer/answer exchange: a plain dial of a router-mapped address first (mapped-strategy.ts), then
 * the strategies: dial, or wait for the dialer's `direct`.
 */
async function punchAndConnect(
  a: Attempt & { initiator: boolean; started: number; portmap: readonly string[] },
): Promise<DirectPathResult> {
  const mapped = await mappedPhase(a)
  if (mapped !== undefined) {
    const { connection, remote } = mapped
    return { connection, plan: 'mapped', ms: performance.now() - a.started, remote }
  }
  const plan = punchPlan(a.local.nat, a.remote.nat)
  const armed = plan === 'birthday-easy' ? a.chan.next() : undefined
  // TCP first when the NATs allow it; the UDP probes run alongside as the fallback
  const tcp = tcpStrategy({ ...a, plan, armed })
  let udx: Strategy
  try {
    udx = udxStrategy({ ...a, plan, armed })
  } catch (err) {
    tcp?.stop()
    throw err
  }
  const strategies = tcp === undefined ? [udx] : [tcp, udx]
  try {
    if (plan === 'birthday-hard') await a.chan.send({ type: 'armed' })
    const dialer = plan === 'simultaneous' ? a.initiator : plan === 'birthday-easy'
    const { connection, remote, strategy } = dialer ? await dialFirst(a, strategies) : await awaitDialer(a, strategies)
    const untested = a.local.untested
    return {
      connection,
      plan: strategy.plan,
      ms: performance.now() - a.started,
      remote,
      ...(untested === undefined ? {} : { untested }),
    }
  } finally {
    for (const s of strategies) s.stop()
  }
}

interface Taken {
  connection: Connection
  remote: DirectPathResult['remote']
  strategy: Strategy
}

/** The dialer: tries the strategies in order and tells the peer which one connected. */
async function dialFirst(a: Attempt, strategies: readonly Strategy[]): Promise<Taken> {
  for (const strategy of strategies) {
    const r = await strategy.dial()
    if (r === undefined) continue
    await a.chan.send({ type: 'direct', addr: r.addr })
    return { connection: r.connection, remote: r.remote, strategy }
  }
  throw noPath(new Error('no strategy connected'), a.remotePeer)
}

/** The other side: every strategy stays ready until the dialer reports, then the one it names delivers. */
async function awaitDialer(a: Attempt, strategies: readonly Strategy[]): Promise<Taken> {
  for (const s of strategies) s.listen()
  const msg = await a.chan.next()
  const chosen = msg.type === 'direct' ? strategies.find((s) => s.carries(msg.addr)) : undefined
  for (const s of strategies) if (s !== chosen) s.passOver()
  if (msg.type !== 'direct') throw noPathBecause(msg.type === 'failed' ? msg.reason : msg.type, a.remotePeer)
  if (chosen === undefined) {
    throw noPath(new Error(`the TCP connection from ${msg.addr} did not come up`), a.remotePeer)
  }
  return { ...(await chosen.accept(msg.addr)), strategy: chosen }
}

function deadline(opts: DirectPathOptions): AbortSignal {
  const t = AbortSignal.timeout(opts.timeoutMs ?? 15_000)
  return opts.signal === undefined ? t : AbortSignal.any([t, opts.signal])
}

/** Initiator: upgrades `via` (a connection to the peer, usually relayed) to a direct TCP or UDX connection. */
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
    const portmap = [...(opts.portMapped?.() ?? [])]
    await chan.send({
      type: 'offer',
      token,
      mapped: local.mapped,
      nat: local.nat,
      ...tcpOffer(local),
      ...(portmap.length === 0 ? {} : { portmap }),
    })
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
      const remote = { ...answer, token }
      return await punchAndConnect({
        node,
        chan,
        remotePeer: via.remotePeer,
        local,
        remote,
        opts,
        signal,
        initiator: true,
        started,
        portmap,
      })
    } catch (err) {
      // which NATs the punch met, so that the caller can tell a miss worth retrying from a hopeless pair
      const why = signal.aborted ? new Error(`timed out after ${opts.timeoutMs ?? 15_000} ms`) : err
      const e = err instanceof WarrenError ? err : noPath(why, via.remotePeer)
      throw new WarrenError(e.code, e.message, {
        ...(e.hint === undefined ? {} : { hint: e.hint }),
        details: {
          ...e.details,
          nats: { local: local.nat, remote: answer.nat },
          // STUN servers that did not answer: the NAT was judged without them (shown in the status)
          ...(local.untested === undefined ? {} : { untested: local.untested }),
        },
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
        const portmap = [...(opts.portMapped?.() ?? [])]
        const mappedTo = portmap.length === 0 ? {} : { portmap }
        await chan.send({ type: 'answer', mapped: local.mapped, nat: local.nat, ...tcpOffer(local), ...mappedTo })
        const remotePeer = connection.remotePeer
        const a = { node, chan, remotePeer, local, remote: offer, opts, signal }
        const r = await punchAndConnect({ ...a, initiator: false, started, portmap })
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
