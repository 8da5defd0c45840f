/**
 * The TCP strategy, tried before UDX when both nodes learned a TCP mapping (STUN over TCP): a simultaneous open between
 * the two mappings when both NATs map TCP endpoint-independently (punch/tcp-punch.ts), the birthday method with SYNs
 * when one is symmetric (punch/tcp-birthday.ts). The connected socket gets Noise and Yamux from libp2p's upgrader. A
 * TCP path carries about twice the throughput of UDX for the same CPU; when no TCP connection stands within
 * `TCP_PUNCH_TIMEOUT_MS` (birthday: `TCP_BIRTHDAY_TIMEOUT_MS`), or it fails to upgrade, the dialer takes UDX.
 *
 * Also here: the `tcp` fields of the punch messages, and how a TCP result is reported.
 *
 * @packageDocumentation
 */
import type { Connection } from '@libp2p/interface'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import type { NatReport } from '../net-report/nat-report.ts'
import type { NatBehaviour, PunchPlan } from '../punch/punch.ts'
import {
  TCP_BIRTHDAY_SOCKETS,
  TCP_BIRTHDAY_TIMEOUT_MS,
  tcpBirthdayEasy,
  tcpBirthdayHard,
} from '../punch/tcp-birthday.ts'
import {
  TCP_PUNCH_TIMEOUT_MS,
  type TcpPunch,
  tcpMultiaddr,
  tcpSimultaneousOpen,
  upgradeTcpSocket,
} from '../punch/tcp-punch.ts'
import { noPath, type Strategy, type StrategyContext } from './strategy.ts'

/** The `tcp` and `tcpNat` fields of an offer or answer. */
export function tcpOffer(local: NatReport): { tcp?: Endpoint; tcpNat?: NatBehaviour } {
  return local.tcp === undefined ? {} : { tcp: local.tcp.mapped, tcpNat: local.tcp.nat }
}

/**
 * The TCP strategy that goes with the UDX plan, from our side, or undefined for none: a simultaneous open when both map
 * TCP endpoint-independently, the birthday method when the TCP NATs are hard and easy the same way round as the UDP
 * ones. The punch starts at once (the hard side's SYNs open its mappings before it says `armed`).
 */
export function tcpStrategy(ctx: StrategyContext): Strategy | undefined {
  const { node, remotePeer, opts, signal, plan } = ctx
  const upgrader = opts.hub.upgrader
  const tcp = upgrader === undefined ? undefined : startTcp(ctx)
  if (upgrader === undefined || tcp === undefined) return undefined
  const upgrade = (dialer: boolean): Promise<Connection | undefined> =>
    tcp.socket.then(async (socket) => {
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
  /** Answering side: the connection the dialer's SYNs made, upgraded as soon as it stands. */
  let inbound: Promise<Connection | undefined> | undefined
  return {
    plan: tcpPlan(plan),
    async dial() {
      // a TCP connection that fails to upgrade (say the peer's socket saw another SYN first) gives way to UDX
      const started = performance.now()
      const connection = await upgrade(true).catch((err: Error) => {
        opts.log?.('debug', `TCP ${tcpPlan(plan)} to ${remotePeer} did not upgrade: ${err.message}`)
        return undefined
      })
      if (connection === undefined) {
        const ms = Math.round(performance.now() - started)
        opts.log?.('debug', `no TCP path (${tcpPlan(plan)}) to ${remotePeer} after ${ms} ms; trying UDX`)
        return undefined
      }
      return { connection, remote: endpointOf(connection), addr: connection.remoteAddr.toString() }
    },
    listen() {
      inbound = upgrade(false).catch(() => undefined)
    },
    carries: (addr) => addr.includes('/tcp/'),
    async accept(addr) {
      const connection = await inbound
      if (connection === undefined)
        throw noPath(new Error(`the TCP connection from ${addr} did not come up`), remotePeer)
      return { connection, remote: endpointOf(connection) }
    },
    passOver() {
      tcp.cancel()
      // a TCP connection that came up on our side only is dropped
      void inbound?.then((c) => c?.abort(new Error('the peer took the UDX path')))
    },
    stop() {
      tcp.cancel()
    },
  }
}

function startTcp(ctx: StrategyContext): TcpPunch | undefined {
  const { local, remote, opts, armed, signal, plan } = ctx
  const mine = local.tcp
  const theirs = remote.tcp
  if (mine === undefined || theirs === undefined) return undefined
  const kinds = `${mine.nat}/${remote.tcpNat ?? 'easy'}`
  if (plan === 'simultaneous' && kinds === 'easy/easy') {
    return tcpSimultaneousOpen(mine.localPort, theirs, { timeoutMs: opts.tcpTimeoutMs ?? TCP_PUNCH_TIMEOUT_MS, signal })
  }
  const timeoutMs = opts.tcpTimeoutMs ?? TCP_BIRTHDAY_TIMEOUT_MS
  if (plan === 'birthday-hard' && kinds === 'hard/easy') {
    return tcpBirthdayHard(opts.birthdaySockets ?? TCP_BIRTHDAY_SOCKETS, theirs, { timeoutMs, signal })
  }
  if (plan === 'birthday-easy' && kinds === 'easy/hard') {
    return tcpBirthdayEasy(mine.localPort, theirs, {
      maxProbes: opts.maxProbes,
      timeoutMs,
      ...(armed === undefined ? {} : { probeAfter: armed }),
      signal,
    })
  }
  return undefined
}

/** The plan a TCP path reports: `tcp` (simultaneous open) or `tcp-birthday`. */
function tcpPlan(plan: PunchPlan): 'tcp' | 'tcp-birthday' {
  return plan === 'simultaneous' ? 'tcp' : 'tcp-birthday'
}

/** host and port of a TCP connection's far end. */
function endpointOf(conn: Connection): Endpoint {
  const parts = conn.remoteAddr.getComponents()
  return { host: parts[0]?.value ?? '', port: Number(parts[1]?.value ?? 0) }
}
