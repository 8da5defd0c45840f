/**
 * The WebRTC tunnel against the real js-libp2p WebRTC transport (node-datachannel on both ends): two Node-side nodes
 * signal through a circuit relay v2 relay and open a WebRTC connection. A raw WebRTC stream whose reader pauses is
 * reset once its read buffer passes libp2p's 4 MiB limit (UPSTREAM.md: no read back-pressure); the same reader on a
 * stream of the tunnel's Noise + Yamux connection holds the sender back and gets every byte (sha256 equal).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, Stream } from '@libp2p/interface'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { bestConnection } from '../../src/p2p/path.ts'
import { type LoadedWebRtc, loadWebRtc } from '../../src/p2p/webrtc/load.ts'
import { isRawWebRtc, isWebRtcTunnel } from '../../src/p2p/webrtc/tunnel.ts'
import { eventually } from '../support/eventually.ts'
import { ByteSource, MiB } from '../support/transfer.ts'
import { dialWebRtcTunnel } from '../support/webrtc-dial.ts'

const BULK = '/warren-test/bulk/1.0.0'
const SIZE = 16 * MiB

/** Sends SIZE bytes of the test pattern on `stream`, waiting for drain; resolves once all is sent and closed. */
async function sendAll(stream: Stream): Promise<void> {
  const src = new ByteSource(SIZE)
  for (let chunk = src.next(64 * 1024); chunk !== null; chunk = src.next(64 * 1024)) {
    if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(60_000) })
  }
  await stream.close({ signal: AbortSignal.timeout(60_000) })
}

/**
 * Reads `stream` with a pause of 1 s after the first message (a reader slower than the network) up to the sender's
 * FIN, and hashes it all; or the error the stream closed with.
 */
function readSlowly(stream: Stream): Promise<{ bytes: number; sha256: string } | { error: string }> {
  return new Promise((resolve) => {
    const hash = createHash('sha256')
    let bytes = 0
    let paused = false
    stream.addEventListener('message', (evt) => {
      const data = evt.data.subarray()
      hash.update(data)
      bytes += data.byteLength
      if (!paused) {
        paused = true
        stream.pause()
        setTimeout(() => {
          if (stream.status === 'open') stream.resume()
        }, 1_000)
      }
    })
    // the sender's FIN after every byte: the whole transfer is in
    stream.addEventListener('remoteCloseWrite', () => {
      resolve({ bytes, sha256: hash.digest('hex') })
      void stream.close().catch(() => {})
    })
    stream.addEventListener('close', (evt) => {
      if (evt.error !== undefined) resolve({ error: evt.error.message })
    })
  })
}

describe('the WebRTC tunnel on js-libp2p WebRTC connections', { timeout: 120_000 }, () => {
  let relay: WarrenLibp2p
  let a: WarrenLibp2p
  let b: WarrenLibp2p
  let loaded: LoadedWebRtc[] = []
  let raw: Connection
  let tunnel: Connection

  before(async () => {
    const webrtc = async () => {
      const l = await loadWebRtc(() => [])
      if ('error' in l) throw new Error(l.error)
      loaded.push(l)
      return l.transport
    }
    relay = await createNode({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      preset: 'relay',
      relayServer: { reservations: { applyDefaultLimit: false } },
    })
    const relayAddr = relay.getMultiaddrs()[0]!.toString()
    a = await createNode({
      privateKey: await generateKeyPair('Ed25519'),
      listen: [`${relayAddr}/p2p-circuit`],
      preset: 'test',
      webrtc: await webrtc(),
    })
    b = await createNode({ privateKey: await generateKeyPair('Ed25519'), preset: 'test', webrtc: await webrtc() })
    await eventually(
      'a holds a reservation',
      () => a.getMultiaddrs().some((m) => m.toString().includes('p2p-circuit')),
      30_000,
    )
    for (const node of [a, b]) {
      await node.handle(BULK, (stream) => void sendAll(stream).catch((err: Error) => stream.abort(err)), {
        runOnLimitedConnection: false,
      })
    }
    ;({ raw, tunnel } = await dialWebRtcTunnel(b, a, relayAddr, {
      onRetry: (attempt, err) =>
        process.stderr.write(`webrtc-tunnel: attempt ${attempt}: ${err.message}; trying again\n`),
    }))
  })

  after(async () => {
    await b?.stop()
    await a?.stop()
    await relay?.stop()
    for (const l of loaded) l.release()
    loaded = []
  })

  it('opens a WebRTC connection and a Noise + Yamux tunnel on it, which new streams prefer', async () => {
    assert.equal(isRawWebRtc(raw), true)
    assert.equal(raw.limits, undefined)
    assert.equal(tunnel.encryption, '/noise')
    assert.equal(tunnel.multiplexer, '/yamux/1.0.0')
    assert.equal(isWebRtcTunnel(tunnel), true)
    assert.equal(tunnel.remoteAddr.toString(), `/webrtc/p2p/${a.peerId}`)
    assert.equal(bestConnection(b.getConnections(a.peerId)), tunnel)
    await eventually('a sees the tunnel', () => a.getConnections(b.peerId).some(isWebRtcTunnel))
  })

  it('stock: a raw WebRTC stream with a slow reader is reset past its 4 MiB read buffer', async () => {
    const stream = await raw.newStream(BULK)
    const got = await readSlowly(stream)
    assert.ok('error' in got, `the stock stream kept its pause: ${JSON.stringify(got)}`)
    assert.match(got.error, /Read buffer length of \d+ exceeded limit of 4194304|reset/i)
  })

  it('Warren: a tunnel stream with the same reader gets all 16 MiB (sha256 equal)', async () => {
    const stream = await tunnel.newStream(BULK)
    const got = await readSlowly(stream)
    assert.deepEqual(got, { bytes: SIZE, sha256: ByteSource.digest(SIZE) })
  })

  it('refuses a tunnel asked for over a connection that is not WebRTC', async () => {
    const relayed = b.getConnections(a.peerId).find((c) => c.remoteAddr.toString().includes('/p2p-circuit/p2p/'))
    assert.ok(relayed)
    await assert.rejects(b.services.webrtcTunnels!.open(relayed), {
      message: `${relayed.remoteAddr} is not a WebRTC connection`,
    })
  })
})
