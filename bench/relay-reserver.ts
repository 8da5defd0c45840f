/**
 * Benchmark child process: a light client holding many circuit relay v2 reservations on one relay, each from its own
 * generated key over its own TCP connection. Each key is a bare js-libp2p node (TCP, Noise, Yamux; no identify, no
 * DHT, no relay client), so that thousands fit in a few processes; it opens `/libp2p/circuit/relay/0.2.0/hop`, sends
 * RESERVE and checks the STATUS answer is OK, as a Warren node does.
 *
 *   node bench/relay-reserver.ts <relay multiaddr with /p2p/> [identify]   → prints {"ready": true}
 *   then stdin commands: `reserve <n>` → {"held": total, "open": keys still connected, "failed": k, "ms": …}
 *
 * WARREN_BENCH_RESERVER_PING_MS sets how often each key checks its connection as a Warren node does (default 10000).
 *
 * Exits on SIGTERM or when stdin closes (its connections close with it).
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { connMonitor } from '../src/p2p/conn-monitor.ts'
import { answerCommands } from './proc.ts'

const HOP = '/libp2p/circuit/relay/0.2.0/hop'
/** HopMessage { type: RESERVE } */
const RESERVE = Uint8Array.of(0x08, 0x00)
const STATUS_OK = 100
/** Reservations asked for at once (the relay accepts 200 new connections per second per host). */
const PARALLEL = 8

const relay = multiaddr(process.argv[2] ?? '')
/** `identify` as the second argument: each key also runs identify and ping, as a Warren node does. */
const full = process.argv[3] === 'identify'
/** How often each key checks its connection to the relay (a Warren node: a Yamux PING frame every 10 s). */
const PING_MS = Number(process.env.WARREN_BENCH_RESERVER_PING_MS ?? 10_000)
const nodes: Libp2p[] = []
let failed = 0
let lastError = ''

/** The `status` field (5) of a HopMessage, or undefined. */
function statusOf(msg: Uint8Array): number | undefined {
  let at = 0
  const varint = (): number => {
    let v = 0
    let shift = 0
    for (;;) {
      const b = msg[at++]!
      v += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return v
      shift += 7
    }
  }
  while (at < msg.length) {
    const tag = varint()
    const wire = tag & 7
    if (wire === 0) {
      const v = varint()
      if (tag >> 3 === 5) return v
    } else if (wire === 2) {
      const len = varint()
      at += len
    } else return undefined
  }
  return undefined
}

/** One reservation from a new key; a refused TCP connection (the relay's accept rate per host) is tried again. */
async function reserveOne(): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      nodes.push(await reserveNew())
      return
    } catch (err) {
      lastError = (err as Error).message
      if (attempt === 3) {
        failed++
        return
      }
      await new Promise((r) => setTimeout(r, 500 * attempt))
    }
  }
}

async function reserveNew(): Promise<Libp2p> {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 4 },
    // each key checks its connection every 10 s as a Warren node does (src/p2p/conn-monitor.ts), but a late answer
    // (thousands of nodes share this process and a loaded machine) must not close the connection: the relay's count
    // of held reservations is the measure
    connectionMonitor: { enabled: false },
    services: {
      monitor: connMonitor({ intervalMs: PING_MS, abortOnFailure: false }),
      ...(full ? { identify: identify(), ping: ping() } : {}),
    },
  })
  try {
    const stream = await node.dialProtocol(relay, HOP, { signal: AbortSignal.timeout(30_000) })
    const lp = lpStream(stream)
    await lp.write(RESERVE)
    const answer = await lp.read({ signal: AbortSignal.timeout(30_000) })
    const status = statusOf(answer.subarray())
    await stream.close()
    if (status !== STATUS_OK) throw new Error(`the relay answered status ${status}`)
    return node
  } catch (err) {
    await node.stop()
    throw err
  }
}

await answerCommands({
  reserve: async (n) => {
    const started = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next++ < n) await reserveOne()
      }),
    )
    return {
      held: nodes.length,
      open: nodes.filter((node) => node.getConnections().length > 0).length,
      failed,
      ms: Math.round(performance.now() - started),
      ...(lastError ? { lastError } : {}),
    }
  },
})
