/**
 * One node of the direct-path upgrade in the lab: a libp2p node with a signalling path (TCP through a router port
 * forward, or circuit relay v2 through a Warren relay on the public segment), the udx transport for the direct path,
 * and the `/warren/punch/1.0.0` handler. Host `a` reaches `b` over the signalling path, runs {@link upgradeToDirect}
 * over that connection, and sends a checksummed bulk stream over the direct connection, or, when there is none, over
 * the signalling connection (the relay fallback). JSON lines with the parent: `config` in, `ready` out (peer id),
 * `peer` in (a only), `upgraded`/`failed` out (a), `sent`/`received` out (with the path used), `finish` in.
 *
 * @packageDocumentation
 */
import { inspect } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import type { Connection, Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import { UdxHub, udx } from '../../p2p/udx/transport.ts'
import { handleDirectPath, upgradeToDirect } from '../../traversal/upgrade/attempt.ts'
import { parentChannel } from './lines.ts'
import { BENCH_PROTOCOL, receiveBulk, sendBulk } from './stream-bench.ts'

interface UpgradeConfig {
  role: 'send' | 'recv'
  stun: Endpoint[]
  bytes: number
  /** `tcp`: b listens on `tcpPort` (forwarded by its router); `relay`: b keeps a reservation on `relayAddr`. */
  signal: 'tcp' | 'relay'
  tcpPort: number
  relayAddr: string
  /** Yamux stream window in bytes (initial = max); 0 keeps Yamux's default. */
  yamuxWindow: number
  /** Birthday probe budget (0: the default). */
  maxProbes: number
  /** Let the upgrade try a TCP simultaneous open first (false: UDX only, what this run measures). */
  directTcp?: boolean
}

const { chan, done } = parentChannel('upgrade-peer')

async function waitForReservation(node: Libp2p): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit'))) {
    if (Date.now() > deadline) throw new Error('no relay reservation within 10 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function main(): Promise<void> {
  const cfg = (await chan.next('config', 10_000)) as unknown as UpgradeConfig
  const hub = new UdxHub()
  const window =
    cfg.yamuxWindow > 0 ? { initialStreamWindowSize: cfg.yamuxWindow, maxStreamWindowSize: cfg.yamuxWindow } : {}
  const listen = ['/ip4/0.0.0.0/udp/0']
  if (cfg.role === 'recv')
    listen.push(cfg.signal === 'tcp' ? `/ip4/0.0.0.0/tcp/${cfg.tcpPort}` : `${cfg.relayAddr}/p2p-circuit`)
  const node = await createLibp2p({
    addresses: { listen },
    transports: [tcp(), circuitRelayTransport(), udx({ hub })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: window })],
    services: { identify: identify() },
  })
  try {
    const maxProbes = cfg.maxProbes > 0 ? cfg.maxProbes : undefined
    await handleDirectPath(node, {
      hub,
      stunServers: cfg.stun,
      maxProbes,
      tcp: cfg.directTcp === true,
      onResult: (r) =>
        chan.send(
          r instanceof Error
            ? { type: 'responder', ok: false, message: r.message }
            : { type: 'responder', ok: true, plan: r.plan, ms: r.ms },
        ),
    })
    if (cfg.role === 'recv') {
      await node.handle(
        BENCH_PROTOCOL,
        async (stream, connection) => {
          chan.send({ type: 'received', path: connection.remoteAddr.toString(), ...(await receiveBulk(stream)) })
        },
        { runOnLimitedConnection: true },
      )
      if (cfg.signal === 'relay') await waitForReservation(node)
      chan.send({ type: 'ready', peerId: node.peerId.toString() })
    } else {
      chan.send({ type: 'ready', peerId: node.peerId.toString() })
      const peer = await chan.next('peer', 10_000)
      const signalling = await node.dial(multiaddr(String(peer.addr)), { signal: AbortSignal.timeout(10_000) })
      let conn: Connection = signalling
      try {
        const upgraded = await upgradeToDirect(node, signalling, {
          hub,
          stunServers: cfg.stun,
          maxProbes,
          tcp: cfg.directTcp === true,
        })
        conn = upgraded.connection
        chan.send({ type: 'upgraded', plan: upgraded.plan, ms: upgraded.ms, path: conn.remoteAddr.toString() })
      } catch (err) {
        chan.send({ type: 'failed', message: (err as Error).message, signalling: signalling.status })
      }
      const stream = await conn.newStream(BENCH_PROTOCOL, { runOnLimitedConnection: true })
      chan.send({
        type: 'sent',
        path: conn.remoteAddr.toString(),
        signalling: signalling.status,
        ...(await sendBulk(stream, cfg.bytes)),
      })
    }
    await chan.next('finish', 120_000)
  } finally {
    await node.stop()
  }
}

main()
  .catch((err: unknown) =>
    chan.send({
      type: 'error',
      message: err instanceof Error ? `${err.name}: ${err.message}` : inspect(err, { depth: 2 }),
      stack: err instanceof Error ? err.stack : undefined,
    }),
  )
  .finally(() => {
    done()
    process.exit(0)
  })
