/**
 * What a node keeps per connection (src/p2p/lean-connections.ts, src/p2p/ping-answer.ts; UPSTREAM.md rows 25-27), on
 * real libp2p nodes over TCP: stock nodes show the upstream behaviour (the guard), Warren's nodes the workaround.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { openPingStream, pingOnce } from '../../src/p2p/conn-ping.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { dropHandshakePayload, flattenAddr, ownAddrBytes, unpinPeerId } from '../../src/p2p/lean-connections.ts'
import { answerPing, PING_PROTOCOL } from '../../src/p2p/ping-answer.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Collects until nothing more goes, letting pending callbacks run in between. */
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
}

async function node(stock: boolean): Promise<WarrenLibp2p> {
  return createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'], stock })
}

async function connect(from: WarrenLibp2p, to: WarrenLibp2p): Promise<Connection> {
  return from.dial(to.getMultiaddrs()[0]!)
}

describe('peer ids in remote addresses', () => {
  it('a parsed /p2p/ value costs over 1 KiB more until it is flattened (guard and fix)', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, async () => peerIdFromPrivateKey(await generateNodeKey())))
    const n = 4000
    await collect()
    const base = process.memoryUsage().heapUsed
    const addrs = Array.from({ length: n }, (_, i) =>
      multiaddr(`/ip4/10.0.${i >> 8}.${i & 255}/tcp/${1000 + i}/p2p/${ids[i % ids.length]!.toString()}`),
    )
    const texts = addrs.map((a) => a.toString())
    await collect()
    const parsed = process.memoryUsage().heapUsed
    for (const a of addrs) flattenAddr(a)
    await collect()
    const flat = process.memoryUsage().heapUsed
    const treeBytes = (parsed - flat) / n
    assert.ok(treeBytes > 1024, `flattening freed ${treeBytes.toFixed(0)} bytes per address: multiaddr builds no trees`)
    assert.ok((flat - base) / n < 1024, `${((flat - base) / n).toFixed(0)} bytes per flattened address`)
    assert.deepEqual(
      addrs.map((a) => a.toString()),
      texts,
    )
    assert.equal(addrs[5]!.getComponents().at(-1)!.value, ids[5]!.toString())
  })
})

describe('peer ids of connections', () => {
  const nodes: WarrenLibp2p[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it("a stock connection's remote peer id keeps a slab of Node's buffer pool (guard)", async () => {
    const [a, b] = [await node(true), await node(true)]
    nodes.push(a, b)
    const conn = await connect(a, b)
    const digest = conn.remotePeer.toMultihash().digest
    assert.ok(digest.buffer.byteLength > digest.byteLength * 4, `digest's buffer: ${digest.buffer.byteLength} bytes`)
  })

  it("a Warren connection's remote peer id keeps only its own bytes, on both ends, and stays the same id", async () => {
    const [a, b] = [await node(false), await node(false)]
    nodes.push(a, b)
    const conn = await connect(a, b)
    await new Promise((r) => setTimeout(r, 50))
    const back = b.getConnections(a.peerId)[0]!
    for (const [c, id] of [
      [conn, b.peerId],
      [back, a.peerId],
    ] as const) {
      const mh = c.remotePeer.toMultihash()
      assert.ok(mh.digest.buffer.byteLength <= mh.bytes.byteLength, `digest's buffer: ${mh.digest.buffer.byteLength}`)
      assert.equal(c.remotePeer.toString(), id.toString())
      assert.ok(c.remotePeer.equals(id))
      assert.deepEqual([...mh.digest], [...id.toMultihash().digest])
    }
    // the remote address keeps its text, and unpinning again finds nothing left to do
    assert.equal(conn.remoteAddr.getComponents().at(-1)!.value, b.peerId.toString())
    assert.equal(unpinPeerId(conn.remotePeer), false)
  })
})

describe('remote addresses of connections', () => {
  const nodes: WarrenLibp2p[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  /** `a` dials `b`; once identify has run both ways, the bytes of `b`'s remote address of `a` (what identify sent). */
  async function observedBytes(stock: boolean): Promise<Uint8Array> {
    const [a, b] = [await node(stock), await node(stock)]
    nodes.push(a, b)
    const identified = new Promise((r) => a.addEventListener('peer:identify', r, { once: true }))
    await connect(a, b)
    await identified
    const back = b.getConnections(a.peerId)[0]!
    return back.remoteAddr.bytes
  }

  it("a stock connection's remote address keeps a slab of Node's buffer pool once identify has sent it (guard)", async () => {
    const bytes = await observedBytes(true)
    assert.ok(bytes.buffer.byteLength > bytes.byteLength * 64, `its buffer: ${bytes.buffer.byteLength} bytes`)
  })

  it("a Warren connection's remote address keeps only its own bytes", async () => {
    const bytes = await observedBytes(false)
    assert.equal(bytes.buffer.byteLength, bytes.byteLength)
  })

  it('encodes the same bytes as multiaddr does, and leaves the pool as it was', () => {
    const text = '/ip4/198.18.0.7/tcp/4001/p2p/12D3KooWLRPJAA5o6Z6ekCkiFrbPuD1c4rKxd9dCwvvDPK6Nxvqa'
    const addr = multiaddr(text)
    assert.equal(ownAddrBytes(addr), true)
    assert.deepEqual([...addr.bytes], [...multiaddr(text).bytes])
    assert.equal(Buffer.poolSize, 65536)
    assert.equal(Buffer.allocUnsafe(8).buffer.byteLength, 65536)
    // already encoded: nothing left to do
    assert.equal(ownAddrBytes(addr), true)
    const pooled = multiaddr(text)
    void pooled.bytes
    assert.equal(ownAddrBytes(pooled), false)
  })
})

describe("the Noise handshake's payload", () => {
  const nodes: WarrenLibp2p[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  type Held = { muxer: { maConn: { handshake: { payload?: { identityKey?: Uint8Array } } } } }

  it("a stock connection's encrypted stream keeps the remote's handshake payload (guard)", async () => {
    const [a, b] = [await node(true), await node(true)]
    nodes.push(a, b)
    const conn = (await connect(a, b)) as unknown as Held
    assert.ok(conn.muxer.maConn.handshake.payload?.identityKey instanceof Uint8Array)
  })

  it('a Warren connection lets go of it on both ends, and its streams still carry data', async () => {
    const [a, b] = [await node(false), await node(false)]
    nodes.push(a, b)
    const conn = await connect(a, b)
    await new Promise((r) => setTimeout(r, 50))
    for (const c of [conn, b.getConnections(a.peerId)[0]!]) {
      assert.equal((c as unknown as Held).muxer.maConn.handshake.payload, undefined)
      assert.equal(dropHandshakePayload(c), false)
    }
    await assert.doesNotReject(pingOnce(conn, 5_000))
  })
})

describe('answering pings', () => {
  let stock: WarrenLibp2p
  let warren: WarrenLibp2p
  let dialer: WarrenLibp2p
  before(async () => {
    ;[stock, warren, dialer] = [await node(true), await node(false), await node(true)]
  })
  after(async () => {
    await Promise.all([stock, warren, dialer].map((n) => n.stop()))
  })

  /** Pings `target` through `dialer`, while watching the answered stream with a WeakRef; true when it is collected. */
  async function answeredStreamCollected(target: WarrenLibp2p): Promise<boolean> {
    let ref: WeakRef<Stream> | undefined
    // the stream, seen on the target's side as its handler gets it: wrap the handler the target registered
    const registrar = (
      target as unknown as {
        components: {
          registrar: { getHandler(p: string): { handler: (s: Stream, c: Connection) => void | Promise<void> } }
        }
      }
    ).components.registrar
    const entry = registrar.getHandler(PING_PROTOCOL)
    const original = entry.handler
    entry.handler = (s, c) => {
      ref = new WeakRef(s)
      return original(s, c)
    }
    try {
      const conn = await connect(dialer, target)
      await pingOnce(conn, 5_000)
      // the dialer's side closes without waiting; let the close reach the target
      await new Promise((r) => setTimeout(r, 200))
      await collect()
      assert.ok(ref !== undefined, 'the handler saw no stream')
      return ref.deref() === undefined
    } finally {
      entry.handler = original
    }
  }

  it("@libp2p/ping's answer holds its stream after the ping is over (guard)", async () => {
    assert.equal(await answeredStreamCollected(stock), false)
  })

  it("a Warren node's answer holds nothing after the ping is over", async () => {
    assert.equal(await answeredStreamCollected(warren), true)
  })

  it('answers several pings on one stream, from a stock node and with the round trip intact', async () => {
    const conn = await connect(dialer, warren)
    const s = await openPingStream(conn)
    for (let i = 0; i < 3; i++) assert.ok((await s.once()) >= 0)
    await s.close()
    const rtt = await dialer.services.ping.ping(warren.peerId)
    assert.ok(rtt >= 0)
  })

  it('aborts a ping stream that is not done within its time, after echoing what came', async () => {
    const SLOW = '/test/slow-ping/1.0.0'
    await warren.handle(SLOW, (s) => answerPing(s, 300), { runOnLimitedConnection: true })
    const conn = await connect(dialer, warren)
    const stream = await conn.newStream(SLOW, { runOnLimitedConnection: true })
    let echoed = 0
    stream.addEventListener('message', (evt) => {
      echoed += evt.data.byteLength
    })
    const closed = new Promise<void>((resolve) => stream.addEventListener('close', () => resolve()))
    stream.send(new Uint8Array(32).fill(7))
    // the dialer never closes its side: the answer's timer aborts the stream, and the dialer sees it end
    await closed
    assert.equal(echoed, 32)
    assert.notEqual(stream.status, 'open')
    assert.ok(stream.status === 'reset' || stream.status === 'aborted', stream.status)
  })
})
