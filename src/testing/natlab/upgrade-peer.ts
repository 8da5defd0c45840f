/**
 * One node of the direct-path upgrade in the lab: a libp2p node with TCP (signalling) and udx (direct path) transports
 * and the `/warren/punch/1.0.0` handler. Host `b` listens on a TCP port its router forwards; host `a` dials it over TCP,
 * runs {@link upgradeToDirect} over that connection, and sends a checksummed bulk stream over the direct connection.
 * JSON lines with the parent: `config` in, `ready` out (peer id), `peer` in (a only), `upgraded`/`failed` out (a),
 * `sent`/`received` out, `finish` in.
 *
 * @packageDocumentation
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { handleDirectPath, upgradeToDirect } from '../../traversal/direct-path.ts'
import type { Endpoint } from '../../traversal/packet-socket.ts'
import { UdxHub, udx } from '../../traversal/udx-transport.ts'
import { parentChannel } from './lines.ts'
import { BENCH_PROTOCOL, receiveBulk, sendBulk } from './stream-bench.ts'

interface UpgradeConfig {
  role: 'send' | 'recv'
  stun: Endpoint[]
  bytes: number
  tcpPort: number
  /** Yamux stream window in bytes (initial = max); 0 keeps Yamux's default. */
  yamuxWindow: number
}

const { chan, done } = parentChannel('upgrade-peer')

async function main(): Promise<void> {
  const cfg = (await chan.next('config', 10_000)) as unknown as UpgradeConfig
  const hub = new UdxHub()
  const window =
    cfg.yamuxWindow > 0 ? { initialStreamWindowSize: cfg.yamuxWindow, maxStreamWindowSize: cfg.yamuxWindow } : {}
  const node = await createLibp2p({
    addresses: {
      listen: ['/ip4/0.0.0.0/udp/0', ...(cfg.role === 'recv' ? [`/ip4/0.0.0.0/tcp/${cfg.tcpPort}`] : [])],
    },
    transports: [tcp(), udx({ hub })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: window })],
  })
  try {
    await handleDirectPath(node, {
      hub,
      stunServers: cfg.stun,
      onResult: (r) =>
        chan.send(
          r instanceof Error
            ? { type: 'responder', ok: false, message: r.message }
            : { type: 'responder', ok: true, plan: r.plan, ms: r.ms },
        ),
    })
    chan.send({ type: 'ready', peerId: node.peerId.toString() })
    if (cfg.role === 'recv') {
      await node.handle(BENCH_PROTOCOL, async (stream, connection) => {
        chan.send({ type: 'received', path: connection.remoteAddr.toString(), ...(await receiveBulk(stream)) })
      })
    } else {
      const peer = await chan.next('peer', 10_000)
      const signalling = await node.dial(multiaddr(String(peer.addr)), { signal: AbortSignal.timeout(5000) })
      let upgraded: Awaited<ReturnType<typeof upgradeToDirect>>
      try {
        upgraded = await upgradeToDirect(node, signalling, { hub, stunServers: cfg.stun })
      } catch (err) {
        chan.send({ type: 'failed', message: (err as Error).message, signalling: signalling.status })
        return
      }
      chan.send({
        type: 'upgraded',
        plan: upgraded.plan,
        ms: upgraded.ms,
        path: upgraded.connection.remoteAddr.toString(),
        signalling: signalling.status,
      })
      const stream = await upgraded.connection.newStream(BENCH_PROTOCOL)
      chan.send({ type: 'sent', ...(await sendBulk(stream, cfg.bytes)) })
    }
    await chan.next('finish', 60_000)
  } finally {
    await node.stop()
  }
}

main()
  .catch((err: unknown) => chan.send({ type: 'error', message: (err as Error).message }))
  .finally(() => {
    done()
    process.exit(0)
  })
