/**
 * The answering side of the ping protocol (`/ipfs/ping/1.0.0`), in place of `@libp2p/ping`'s. Its handler arms an
 * `AbortSignal.timeout` per ping stream whose abort listener holds the stream and is never removed, so every answered
 * stream stays in memory until the timeout (10 s) fires: on a node whose peers ping it every 10 s, each connection
 * keeps one closed stream (about 4.7 KiB on a relay) at all times. This answer echoes the same way (every chunk as
 * it comes, then closes its end) under a timer that it clears when the stream is done.
 *
 * The `ping` service stays for outgoing pings (kad-dht uses it); {@link answerPings} takes over its handler.
 *
 * @packageDocumentation
 */
import type { Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

export const PING_PROTOCOL = '/ipfs/ping/1.0.0'

/** What a ping stream may take in all, as `@libp2p/ping` allows: past it, the stream is aborted. */
export const PING_ANSWER_TIMEOUT_MS = 10_000

/** Waits for `drain`, or the stream closing (then it rejects). */
function drained(stream: Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
    }
    const onDrain = (): void => {
      done()
      resolve()
    }
    const onClose = (): void => {
      done()
      reject(new Error(`the ping stream closed while its pong waited (${stream.status})`))
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

/** Echoes everything `stream` brings, then closes it; aborted after `timeoutMs`. Holds nothing once it returns. */
export async function answerPing(stream: Stream, timeoutMs = PING_ANSWER_TIMEOUT_MS): Promise<void> {
  const timer = setTimeout(() => stream.abort(new Error(`ping stream not done within ${timeoutMs} ms`)), timeoutMs)
  try {
    for await (const chunk of stream) {
      if (stream.status !== 'open') break
      if (!stream.send(chunk)) await drained(stream)
    }
    await stream.close()
  } catch (err) {
    stream.abort(err as Error)
  } finally {
    clearTimeout(timer)
  }
}

/** Replaces the ping service's answering handler on a started `node`, with the same stream limits. */
export async function answerPings(
  node: Pick<Libp2p, 'handle' | 'unhandle'>,
  opts: { maxInboundStreams: number; maxOutboundStreams: number; timeoutMs?: number },
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? PING_ANSWER_TIMEOUT_MS
  await node.unhandle(PING_PROTOCOL)
  await node.handle(PING_PROTOCOL, (stream) => answerPing(stream, timeoutMs), {
    maxInboundStreams: opts.maxInboundStreams,
    maxOutboundStreams: opts.maxOutboundStreams,
    runOnLimitedConnection: true,
  })
}
