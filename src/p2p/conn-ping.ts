/**
 * Round trips over one given libp2p connection: the ping protocol (`/ipfs/ping/1.0.0`, every Warren node answers it)
 * on a single stream, so a relayed and a direct connection to the same peer can be timed side by side. libp2p's own
 * `ping()` cannot do that (it picks a connection itself, opens a stream per ping and counts in whole milliseconds).
 * `warren ping` uses it on the connection it would open service streams on; the NAT lab times both paths with it.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto'
import type { Connection, Stream } from '@libp2p/interface'
import { PING_PROTOCOL } from './ping-answer.ts'

const PING_LENGTH = 32

/** An open ping stream; `once()` times one 32-byte echo in ms (performance.now()). */
export interface PingStream {
  once(timeoutMs?: number): Promise<number>
  close(): Promise<void>
}

/** Opens a ping stream on `conn` (also on limited, i.e. relayed, connections). */
export async function openPingStream(conn: Connection, timeoutMs = 10_000): Promise<PingStream> {
  const stream: Stream = await conn.newStream(PING_PROTOCOL, {
    signal: AbortSignal.timeout(timeoutMs),
    runOnLimitedConnection: true,
  })
  const chunks = stream[Symbol.asyncIterator]()
  let pending = Buffer.alloc(0)
  const once = async (onceTimeoutMs = timeoutMs): Promise<number> => {
    const data = randomBytes(PING_LENGTH)
    const timer = setTimeout(() => stream.abort(new Error(`no pong within ${onceTimeoutMs} ms`)), onceTimeoutMs)
    try {
      const started = performance.now()
      stream.send(data)
      while (pending.length < PING_LENGTH) {
        const next = await chunks.next()
        if (next.done === true) throw new Error(`the ping stream ended (${stream.status})`)
        pending = Buffer.concat([pending, next.value.subarray()])
      }
      const ms = performance.now() - started
      if (!pending.subarray(0, PING_LENGTH).equals(data)) throw new Error('the pong differs from the ping')
      pending = pending.subarray(PING_LENGTH)
      return ms
    } finally {
      clearTimeout(timer)
    }
  }
  const close = async (): Promise<void> => {
    await stream.close().catch((err: Error) => stream.abort(err))
  }
  return { once, close }
}

/**
 * One ping on a fresh stream of `conn`, answered within `timeoutMs` in all (opening included), else it rejects. The
 * stream is closed without waiting: a far side that vanished right after its pong never closes its end.
 */
export async function pingOnce(conn: Connection, timeoutMs: number): Promise<void> {
  const started = performance.now()
  const stream = await openPingStream(conn, timeoutMs)
  try {
    await stream.once(Math.max(1, timeoutMs - (performance.now() - started)))
  } finally {
    void stream.close().catch(() => {})
  }
}

/** A muxer with a ping of its own (Yamux: a PING frame, answered by the far side's muxer without a stream). */
interface PingingMuxer {
  ping(options?: { signal?: AbortSignal }): Promise<number>
}

/**
 * One round trip over `conn`, in ms, aborted by `signal`: the muxer's own ping where it has one, else a ping stream
 * (`fallbackTimeoutMs` in all). A muxer ping costs the far side one 12-byte frame back; a ping stream costs it a new
 * stream, a protocol negotiation and a handler.
 */
export async function checkConnection(
  conn: Connection,
  signal: AbortSignal,
  fallbackTimeoutMs: number,
): Promise<number> {
  const muxer = (conn as { muxer?: Partial<PingingMuxer> }).muxer
  const started = performance.now()
  if (typeof muxer?.ping === 'function') {
    signal.throwIfAborted()
    await muxer.ping({ signal })
  } else {
    await pingOnce(conn, fallbackTimeoutMs)
  }
  return performance.now() - started
}

/**
 * `count` round trips on each connection, taking turns (so load on the machine falls on both alike), after one
 * unrecorded warm-up each. Returns the samples in ms per connection, in the order given.
 */
export async function pingConnections(conns: readonly Connection[], count: number): Promise<number[][]> {
  const streams = await Promise.all(conns.map((c) => openPingStream(c)))
  try {
    for (const s of streams) await s.once()
    const samples = streams.map((): number[] => [])
    for (let i = 0; i < count; i++) {
      for (const [j, s] of streams.entries()) samples[j]!.push(await s.once())
    }
    return samples
  } finally {
    await Promise.all(streams.map((s) => s.close()))
  }
}
