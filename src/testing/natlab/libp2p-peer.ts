/**
 * One side of the libp2p-over-UDX direct path in the lab: a libp2p node whose only transport is {@link udx} (Noise,
 * Yamux), STUN and punching on the transport's own listening socket, then a libp2p dial over the punched path and a
 * checksummed bulk stream a → b. JSON lines with the parent as in {@link ./udx-peer.ts}, plus `connected` (ms from the
 * start of punching to an upgraded libp2p connection) and `sent`/`received`.
 *
 * @packageDocumentation
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { UdxHub, udx } from '../../p2p/udx/transport.ts'
import { parentChannel, runChild } from './lines.ts'
import { type PunchConfig, stunAndPunch } from './peer-punch.ts'
import { BENCH_PROTOCOL, receiveBulk, sendBulk, type TransferReport } from './stream-bench.ts'

const { chan, done } = parentChannel('libp2p-peer')

const hub = new UdxHub()
const node = await createLibp2p({
  addresses: { listen: ['/ip4/0.0.0.0/udp/0'] },
  transports: [udx({ hub })],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
})

async function main(): Promise<void> {
  const cfg = (await chan.next('config', 10_000)) as unknown as PunchConfig
  let received: Promise<TransferReport> | undefined
  const gotStream = new Promise<void>((resolve) => {
    void node.handle(BENCH_PROTOCOL, (stream) => {
      received = receiveBulk(stream)
      resolve()
    })
  })
  const primary = hub.primary()!
  const extras = new Set<ReturnType<UdxHub['extraEndpoint']>>()
  const out = await stunAndPunch(
    chan,
    cfg,
    primary.packets,
    () => {
      const ep = hub.extraEndpoint()
      extras.add(ep)
      return ep.packets
    },
    { peerId: node.peerId.toString() },
  )
  if (out.result === undefined) return
  const winner = out.sockets[out.result.socketIndex]
  for (const ep of extras) if (ep.packets !== winner) await hub.release(ep)
  const started = performance.now() - out.result.ms
  const remotePeer = peerIdFromString(String(out.peer.peerId))
  // Simultaneous: a dials. Birthday: the easy side dials (its socket is the primary one the transport dials from).
  const dialer = out.plan === 'simultaneous' ? cfg.role === 'send' : out.plan === 'birthday-easy'
  let conn: Connection
  if (dialer) {
    const { host, port } = out.result.remote
    conn = await node.dial(multiaddr(`/ip4/${host}/udp/${port}/p2p/${remotePeer}`), {
      signal: AbortSignal.timeout(10_000),
    })
  } else {
    conn = await new Promise<Connection>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no inbound libp2p connection within 10 s')), 10_000)
      const check = (): void => {
        const c = node.getConnections(remotePeer)[0]
        if (c === undefined) return
        clearTimeout(t)
        node.removeEventListener('connection:open', check)
        resolve(c)
      }
      node.addEventListener('connection:open', check)
      check()
    })
  }
  chan.send({ type: 'connected', ms: performance.now() - started, remoteAddr: conn.remoteAddr.toString(), dialer })
  out.session.stop()
  if (cfg.role === 'send') {
    const stream = await conn.newStream(BENCH_PROTOCOL)
    chan.send({ type: 'sent', ...(await sendBulk(stream, cfg.bytes)) })
  } else {
    await gotStream
    chan.send({ type: 'received', ...(await received!) })
  }
  await chan.next('finish', 60_000)
}

runChild({ chan, done }, main, () => node.stop())
