/**
 * The UDX strategy: both nodes punch their NATs from the udx transport's own socket (the hard side of a birthday from
 * `birthdaySockets` sockets), and the dialer dials the peer's answering endpoint through the udx transport, so the
 * connection gets Noise and Yamux from libp2p's upgrader. The answering side keeps answering probes until the dialer
 * reports, then picks the new connection out of the node's connections.
 *
 * @packageDocumentation
 */
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { WarrenError } from '../../errors.ts'
import type { UdxEndpoint } from '../../p2p/udx/endpoint.ts'
import type { PacketSocket } from '../../p2p/udx/packet-socket.ts'
import { udpEndpointOf } from '../../p2p/udx/transport.ts'
import { requirePrimary } from '../net-report/nat-report.ts'
import { punch } from '../punch/punch.ts'
import { noPath, type Strategy, type StrategyContext } from './strategy.ts'
import { waitForConnection } from './wait-connection.ts'

/** Starts punching at once; the sockets of a birthday's hard side are opened here. */
export function udxStrategy(ctx: StrategyContext): Strategy {
  const { node, chan, remotePeer, local, remote, opts, signal, plan, armed } = ctx
  const hub = opts.hub
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
  /** The birthday socket the answering side's connection runs on: kept when the others are released. */
  let winner: UdxEndpoint | undefined
  return {
    plan,
    async dial() {
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
      return { connection, remote: result.remote, addr: ma.toString() }
    },
    listen() {
      // keep answering probes until the dialer reports; our own punch result does not decide
      session.result.catch(() => undefined)
    },
    carries: (addr) => !addr.includes('/tcp/'),
    async accept() {
      const result = await session.result.catch(() => undefined)
      if (result !== undefined) winner = extras[result.socketIndex - 1]
      const at = result?.remote ?? remote.mapped
      const connection = await waitForConnection(
        node,
        remotePeer,
        (c) => {
          const e = udpEndpointOf(c.remoteAddr)
          return e !== undefined && e.host === at.host && e.port === at.port
        },
        signal,
      )
      return { connection, remote: at }
    },
    passOver() {},
    stop() {
      session.stop()
      // the birthday's other sockets close in the background: one by one they took ~10 ms each (2.5 s for 255)
      void Promise.allSettled(extras.filter((ep) => ep !== winner).map((ep) => hub.release(ep)))
    },
  }
}
