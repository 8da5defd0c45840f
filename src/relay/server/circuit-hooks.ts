/**
 * Warren's part in opening a circuit: the server's `handleConnect` and `stopHop` are wrapped so that each circuit
 * runs in its own {@link CircuitContext}. The destination stream goes over the connection the node last reserved over
 * ({@link ReservedConnections}); the server is handed stand-ins for the two streams ({@link StreamStandIn}) while
 * Warren joins the real ones itself ({@link spliceStreams}); once the server is done, the circuit's slot is committed
 * to the circuit tracker (circuits.ts) or released.
 */

import type { AsyncLocalStorage } from 'node:async_hooks'
import type { PeerId, Stream } from '@libp2p/interface'
import type { CircuitSlot } from './circuits.ts'
import type { CircuitLimit } from './policy.ts'
import type { ReservedConnections } from './reserved-over.ts'
import type { ServerInternals } from './server-internals.ts'
import { type Splice, spliceStreams } from './splice.ts'
import { StreamStandIn } from './stand-in.ts'

/** One circuit while the server opens it. */
export interface CircuitContext {
  /** The node that asked for the circuit. */
  src: string
  /** The limits given to libp2p for it (read once, when the server looks the reservation up). */
  limit?: CircuitLimit | undefined
  slot?: CircuitSlot
  dst?: PeerId
  dstStream?: Stream
  /** The hop stream of the node that asked, once the server let go of it. */
  srcStream?: Stream
  /** What carries the circuit's bytes ({@link spliceStreams}), once both streams exist. */
  splice?: Splice
  /** What the server got in place of {@link dstStream}. */
  dstStandIn?: StreamStandIn
}

export interface CircuitHooksOptions {
  /** Holds the context of the circuit being opened; the gater and the reservation store read it too. */
  context: AsyncLocalStorage<CircuitContext>
  /** The connection each node last reserved over. */
  reservedOver: ReservedConnections
  /** Leave the bytes to js-libp2p's own pipe: only for bench/relay.ts, which compares the two. */
  libp2pPipe: boolean
}

/** Wraps the server's `handleConnect` and `stopHop`; call once, before the server serves anyone. */
export function hookCircuits(s: ServerInternals, hooks: CircuitHooksOptions): void {
  const { context, reservedOver, libp2pPipe } = hooks
  const handleConnect = s.handleConnect.bind(s)
  s.handleConnect = (opts, options) => {
    const ctx: CircuitContext = { src: opts.connection.remotePeer.toString() }
    // the server takes the source stream off the hop stream with unwrap() right before it relays
    const hop = opts.stream
    const stream = libp2pPipe
      ? hop
      : (Object.create(hop, { unwrap: { value: () => spliceCircuit(ctx, hop.unwrap()) } }) as typeof hop)
    return context.run(ctx, async () => {
      let relaying = false
      try {
        await handleConnect({ ...opts, stream }, options)
        relaying = true
      } finally {
        // the source stream is unwrapped only now: the server still writes protobuf on it until it relays
        settleCircuit(ctx, relaying, opts.stream)
      }
    })
  }
  const stopHop = s.stopHop.bind(s)
  s.stopHop = async (opts, options) => {
    // libp2p takes the node's oldest connection; after a NAT rebinding that one is dead until hooks.ts closes it
    const node = opts.connection.remotePeer.toString()
    const stream = await reservedOver.stopVia(node, opts.connection, options.signal, (connection, signal) =>
      stopHop({ ...opts, connection }, { ...options, ...(signal === undefined ? {} : { signal }) }),
    )
    const ctx = context.getStore()
    if (ctx === undefined || stream === undefined || libp2pPipe) {
      if (ctx !== undefined && stream !== undefined) {
        ctx.dst = opts.connection.remotePeer
        ctx.dstStream = stream
      }
      return stream
    }
    ctx.dst = opts.connection.remotePeer
    ctx.dstStream = stream
    ctx.dstStandIn = new StreamStandIn((err) => (ctx.splice ?? stream).abort(err))
    return ctx.dstStandIn as unknown as Stream
  }
}

/**
 * Joins the source stream to the destination stream of the circuit being opened and returns the stand-in the
 * server relays instead (the real stream when there is no destination stream to join it to).
 */
function spliceCircuit(ctx: CircuitContext, src: Stream): Stream {
  ctx.srcStream = src
  const dst = ctx.dstStream
  if (dst === undefined) return src
  const standIn = new StreamStandIn((err) => ctx.splice?.abort(err))
  ctx.splice = spliceStreams(src, dst, {
    ...(ctx.limit === undefined ? {} : { dataLimit: ctx.limit.dataBytes }),
    onEnd: (err) => {
      standIn.end(err)
      ctx.dstStandIn?.end(err)
    },
  })
  return standIn as unknown as Stream
}

/** Books a circuit the server opened, or releases its slot (and its destination stream) when it was not opened. */
function settleCircuit(ctx: CircuitContext, relaying: boolean, hop?: { unwrap(): Stream }): void {
  const src = relaying ? (ctx.srcStream ?? hop?.unwrap()) : undefined
  if (src === undefined && ctx.dstStream !== undefined && ctx.splice === undefined) {
    // the circuit was not opened after all: its stream to the destination goes
    ctx.dstStream.abort(new Error('the relayed connection was not established'))
  }
  if (ctx.slot === undefined) return
  if (src === undefined || ctx.dst === undefined || ctx.dstStream === undefined || src.status !== 'open') {
    ctx.slot.release()
    return
  }
  ctx.slot.commit(src, ctx.dstStream, ctx.limit)
}
