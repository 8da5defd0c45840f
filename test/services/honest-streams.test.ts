/**
 * The two stream workarounds of src/p2p/patches/honest-streams.ts, each against the real @chainsafe/libp2p-yamux and
 * @libp2p/utils: the stock stack still shows the upstream behaviour (so that this test fails, and the workaround
 * can go, once upstream fixes it), and Warren's stack does not.
 */
import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Connection, Stream } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { ConnectionLostError } from '../../src/p2p/patches/honest-streams.ts'
import { eventually } from '../support/eventually.ts'

const PROTO = '/warren-test/honest/1.0.0'
const CHUNK = new Uint8Array(64 * 1024)
/** YamuxStream's StreamState.Paused. */
const YAMUX_PAUSED = 5

interface Pair {
  a: WarrenLibp2p
  b: WarrenLibp2p
  inbound: Promise<Stream>
  stop(): Promise<void>
}

async function pair(stock: boolean): Promise<Pair> {
  const a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'], stock })
  const b = await createNode({ privateKey: await generateNodeKey(), listen: [], stock })
  let take: (s: Stream) => void = () => {}
  const inbound = new Promise<Stream>((resolve) => {
    take = resolve
  })
  await a.handle(PROTO, (stream: Stream) => take(stream))
  return { a, b, inbound, stop: async () => void (await Promise.all([a.stop(), b.stop()])) }
}

/** Sends `n` chunks as fast as the stream takes them. */
async function send(stream: Stream, n: number): Promise<void> {
  for (let i = 0; i < n; i++) if (!stream.send(CHUNK)) await stream.onDrain()
}

/**
 * A receiver that pauses, lets bytes pile up, then resumes with a consumer that pauses again at once (what a pipe to
 * a full socket does); returns the Yamux state right after and the read buffer a little later.
 */
async function pauseDuringResume(p: Pair): Promise<{ state: number; readStatus: string; buffered: number }> {
  const out = await p.b.dialProtocol(p.a.getMultiaddrs()[0]!, PROTO)
  const inb = await p.inbound
  inb.pause()
  void send(out, 64).catch(() => {}) // 4 MiB, twice the window
  // the bytes have piled up once the sender has used its credit: the read buffer stops growing
  let seen = -1
  await eventually(
    () => {
      const n = inb.readBufferLength
      const still = n > 0 && n === seen
      seen = n
      return still
    },
    { intervalMs: 100, message: 'a read buffer that stopped growing' },
  )
  inb.addEventListener('message', () => {
    if (inb.readStatus === 'readable') inb.pause()
  })
  inb.resume()
  const state = (inb as unknown as { state: number }).state
  await sleep(300) // a fixed wait on purpose: what the sender may push meanwhile is what the test measures
  const result = { state, readStatus: inb.readStatus, buffered: inb.readBufferLength }
  out.abort(new Error('done'))
  return result
}

describe('a pause made during resume (Yamux sendResume)', () => {
  it('stock: the pause is lost and the sender is granted credit while the reader is paused (upstream bug)', async () => {
    const p = await pair(true)
    try {
      const r = await pauseDuringResume(p)
      assert.equal(r.readStatus, 'paused')
      assert.notEqual(r.state, YAMUX_PAUSED, 'upstream fixed: remove keepPauseOnResume and its UPSTREAM.md entry')
    } finally {
      await p.stop()
    }
  })

  it('Warren: the pause holds and the read buffer stays within the 2 MiB window', async () => {
    const p = await pair(false)
    try {
      const r = await pauseDuringResume(p)
      assert.equal(r.readStatus, 'paused')
      assert.equal(r.state, YAMUX_PAUSED)
      assert.ok(r.buffered <= 2 * 1024 * 1024, `${r.buffered} bytes buffered`)
    } finally {
      await p.stop()
    }
  })
})

/** The net.Socket under a libp2p TCP connection (Connection → Noise message stream → TCP connection). */
function tcpSocketOf(conn: Connection): Socket {
  const enc = (conn as unknown as { maConn: { stream?: { socket?: unknown }; socket?: unknown } }).maConn
  const socket = enc.stream?.socket ?? enc.socket
  assert.ok(socket instanceof Socket, 'no TCP socket under the connection')
  return socket
}

/** Opens a stream, closes a's TCP socket mid-transfer, and returns how b's stream closed. */
async function closedMidTransfer(p: Pair): Promise<{ error?: Error; remoteFin: boolean }> {
  const out = await p.b.dialProtocol(p.a.getMultiaddrs()[0]!, PROTO)
  const inb = await p.inbound
  let remoteFin = false
  out.addEventListener('remoteCloseWrite', () => {
    remoteFin = true
  })
  const closed = new Promise<Error | undefined>((resolve) => {
    out.addEventListener('close', (evt) => resolve((evt as Event & { error?: Error }).error))
  })
  let received = 0
  out.addEventListener('message', (evt) => {
    received += (evt as Event & { data: { byteLength: number } }).data.byteLength
  })
  void send(inb, 1_000_000).catch(() => {})
  await eventually(() => received > 0, { timeoutMs: 30_000, message: 'bytes arriving at b' })
  // a's TCP socket closes under the connection (a FIN, as when a relay process dies), b's stream not ended
  for (const c of p.a.getConnections()) tcpSocketOf(c).destroy()
  const error = await closed
  return error === undefined ? { remoteFin } : { error, remoteFin }
}

describe('a connection that closes under an open stream', () => {
  let stock: Pair
  let warren: Pair
  before(async () => {
    stock = await pair(true)
    warren = await pair(false)
  })
  after(async () => {
    await Promise.all([stock.stop(), warren.stop()])
  })

  it('stock: the stream ends as if complete, with no FIN and no error (upstream behaviour)', async () => {
    const r = await closedMidTransfer(stock)
    assert.equal(r.error, undefined, 'upstream now errors: remove the onTransportClosed workaround')
  })

  it('Warren: the stream is aborted with ConnectionLostError', async () => {
    const r = await closedMidTransfer(warren)
    assert.ok(r.error instanceof ConnectionLostError, `closed with ${String(r.error)}`)
    assert.equal(r.error.code, 'ERR_CONNECTION_LOST')
  })
})
