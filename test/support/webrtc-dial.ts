/** A WebRTC connection and its Noise + Yamux tunnel between two test nodes, through a circuit relay. */
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { WarrenLibp2p } from '../../src/p2p/create.ts'

/**
 * `b` dials `a` through the relay at `relayAddr`, then over WebRTC, and opens the tunnel on the WebRTC connection.
 * ICE on a loaded machine sometimes misses libp2p's own set-up time-outs (seen in CI with the suite's other tests
 * beside it), so a failed set-up is tried again, up to `attempts` times, after closing what it left; `onRetry` hears
 * each failure that is tried again.
 */
export async function dialWebRtcTunnel(
  b: WarrenLibp2p,
  a: WarrenLibp2p,
  relayAddr: string,
  opts: { attempts?: number; onRetry?: (attempt: number, err: Error) => void } = {},
): Promise<{ raw: Connection; tunnel: Connection }> {
  const attempts = opts.attempts ?? 3
  for (let attempt = 1; ; attempt++) {
    try {
      // the test preset gives up a dial after 3 s; ICE on a loaded machine may take longer
      const signal = AbortSignal.timeout(30_000)
      await b.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${a.peerId}`), { signal })
      const raw = await b.dial(multiaddr(`${relayAddr}/p2p-circuit/webrtc/p2p/${a.peerId}`), { force: true, signal })
      const tunnel = await b.services.webrtcTunnels!.open(raw, { signal })
      return { raw, tunnel }
    } catch (err) {
      if (attempt >= attempts) throw err
      opts.onRetry?.(attempt, err as Error)
      for (const c of b.getConnections(a.peerId)) await c.close().catch(() => {})
    }
  }
}
