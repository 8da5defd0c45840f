/**
 * WebRTC for a Node-side node: js-libp2p's WebRTC transport (private-to-private: a browser signals through a relay,
 * then talks to this node over UDP), loaded only when asked for, because it brings a native library
 * (node-datachannel, libdatachannel). A platform without a prebuilt binary gets a reason instead of a transport, and
 * the node runs without WebRTC.
 *
 * libdatachannel's threads outlive the last peer connection and keep the process from exiting (it hangs at exit
 * when stdout is a pipe) until `cleanup()` is called: each node that loads the transport calls `release()` once it
 * has stopped, and the last one out cleans up (UPSTREAM.md).
 */
import type { Transport } from '@libp2p/interface'

/** An ICE server as RTCPeerConnection takes it (`stun:198.18.0.1:3478`). */
export interface IceServer {
  urls: string | string[]
  username?: string
  credential?: string
}

// biome-ignore lint/suspicious/noExplicitAny: libp2p's transport factories take its internal components object
export type TransportFactory = (components: any) => Transport

export interface LoadedWebRtc {
  transport: TransportFactory
  /** Called once the node using `transport` has stopped; the last node out frees libdatachannel's threads. */
  release(): void
}

/** Nodes of this process that loaded the transport and have not released it. */
let users = 0

/** The transport, with ICE servers read at every connection (`iceServers`), or why it cannot run here. */
export async function loadWebRtc(iceServers: () => IceServer[]): Promise<LoadedWebRtc | { error: string }> {
  try {
    const native = await import('node-datachannel')
    const { webRTC } = await import('@libp2p/webrtc')
    users++
    let released = false
    return {
      transport: webRTC({ rtcConfiguration: () => ({ iceServers: iceServers() }) }) as TransportFactory,
      release: () => {
        if (released) return
        released = true
        if (--users === 0) native.cleanup()
      },
    }
  } catch (err) {
    return { error: (err as Error).message }
  }
}
