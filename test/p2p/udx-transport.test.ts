/** The udx transport on loopback: the UDX endpoint, and libp2p (Noise + Yamux) over it. */
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { UdxEndpoint } from '../../src/p2p/udx/endpoint.ts'
import { UDX_HANDSHAKES, UdxHub, udpEndpointOf, udx } from '../../src/p2p/udx/transport.ts'
import { stunBinding } from '../../src/stun/client.ts'
import { startStunResponder } from '../../src/stun/codec.ts'
import { BENCH_PROTOCOL, receiveBulk, sendBulk, type TransferReport } from '../../src/testing/natlab/stream-bench.ts'
import { eventually } from '../support/eventually.ts'

function udp(): Promise<Socket> {
  const s = createSocket('udp4')
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)))
}

describe('udx endpoint', () => {
  it('opening a stream to a port nobody answers fails with ERR_TIMEOUT naming the address', async () => {
    const silent = await udp()
    const ep = new UdxEndpoint({ host: '127.0.0.1' })
    try {
      const port = silent.address().port
      await assert.rejects(ep.open({ host: '127.0.0.1', port }, { timeoutMs: 300 }), (err: unknown) => {
        assert.ok(isWarrenError(err, 'ERR_TIMEOUT'))
        assert.equal(err.message, `no UDX answer from 127.0.0.1:${port} within 300 ms`)
        return true
      })
    } finally {
      await ep.close()
      silent.close()
    }
  })

  it('binding a taken port fails with ERR_LISTEN_FAILED', async () => {
    const ep = new UdxEndpoint({ host: '127.0.0.1' })
    try {
      const { port } = ep.address()
      assert.throws(
        () => new UdxEndpoint({ host: '127.0.0.1', port }),
        (err: unknown) => {
          assert.ok(isWarrenError(err, 'ERR_LISTEN_FAILED'))
          assert.match(err.message, new RegExp(`^could not bind UDP 127\\.0\\.0\\.1:${port}: `))
          return true
        },
      )
    } finally {
      await ep.close()
    }
  })

  it('parses only /ip4|ip6/<host>/udp/<port>[/p2p/<id>] addresses', () => {
    assert.deepEqual(udpEndpointOf(multiaddr('/ip4/198.18.0.2/udp/4000')), { host: '198.18.0.2', port: 4000 })
    assert.equal(udpEndpointOf(multiaddr('/ip4/198.18.0.2/tcp/4000')), undefined)
    assert.equal(udpEndpointOf(multiaddr('/ip4/198.18.0.2/udp/4000/quic-v1')), undefined)
  })
})

describe('libp2p over the udx transport on loopback', () => {
  const hubs = [new UdxHub(), new UdxHub()]
  let nodes: Libp2p[] = []
  before(async () => {
    nodes = await Promise.all(
      hubs.map((hub) =>
        createLibp2p({
          addresses: { listen: ['/ip4/127.0.0.1/udp/0'] },
          transports: [udx({ hub })],
          connectionEncrypters: [noise()],
          streamMuxers: [yamux()],
        }),
      ),
    )
  })
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it('listens on the hub socket, which STUN sees at the listen port', async () => {
    const stun = await startStunResponder({ host: '127.0.0.1', port: 0 })
    try {
      const [addr] = nodes[1]!.getMultiaddrs()
      const at = udpEndpointOf(addr!)!
      assert.deepEqual(hubs[1]!.primary()!.address(), at)
      const { mapped } = await stunBinding(hubs[1]!.primary()!.packets, stun.address)
      assert.deepEqual(mapped, at)
    } finally {
      await stun.close()
    }
  })

  it('dials, upgrades with Noise + Yamux and carries 16 MiB with a matching SHA-256', async () => {
    const [a, b] = nodes as [Libp2p, Libp2p]
    let received: Promise<TransferReport> | undefined
    await b.handle(BENCH_PROTOCOL, (stream) => {
      received = receiveBulk(stream)
    })
    const conn = await a.dial(b.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
    assert.equal(conn.remotePeer.toString(), b.peerId.toString())
    assert.match(conn.remoteAddr.toString(), /^\/ip4\/127\.0\.0\.1\/udp\/\d+\/p2p\//)
    assert.equal(conn.encryption, '/noise')
    assert.equal(conn.multiplexer, '/yamux/1.0.0')
    const stream = await conn.newStream(BENCH_PROTOCOL)
    const sent = await sendBulk(stream, 16 * 1024 * 1024)
    const got = await received!
    assert.equal(got.bytes, 16 * 1024 * 1024)
    assert.equal(got.sha256, sent.sha256)
    await conn.close()
    assert.equal(conn.status, 'closed')
  })

  it('echoes messages of 1 byte to 200 KiB one at a time, each whole and in order (gathered reads flush)', async () => {
    const [a, b] = nodes as [Libp2p, Libp2p]
    const ECHO = '/warren/test-echo/1.0.0'
    await b.handle(ECHO, (stream) => {
      stream.addEventListener('message', (evt) => {
        stream.send(evt.data)
      })
      stream.addEventListener('remoteCloseWrite', () => {
        void stream.close().catch(() => {})
      })
    })
    const conn = await a.dial(b.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
    const stream = await conn.newStream(ECHO)
    const got: Uint8Array[] = []
    let gotBytes = 0
    let waiter: (() => void) | undefined
    stream.addEventListener('message', (evt) => {
      const parts = evt.data instanceof Uint8Array ? [evt.data] : [...evt.data]
      for (const p of parts) {
        got.push(p.slice())
        gotBytes += p.byteLength
      }
      waiter?.()
    })
    // sizes below, around and above one UDX packet, one Noise message and DELIVER_BYTES; each waits for its echo, so
    // a message smaller than a packet only arrives if the receiver flushes what it gathered without more traffic
    const sizes = [1, 2, 100, 1179, 1180, 1500, 4096, 65_535, 65_536, 65_537, 131_072, 204_800, 3, 1]
    const deadline = Date.now() + 20_000
    let expected = 0
    for (const [i, size] of sizes.entries()) {
      const msg = new Uint8Array(size).map((_, j) => (i * 31 + j) & 0xff)
      expected += size
      stream.send(msg)
      while (gotBytes < expected) {
        assert.ok(Date.now() < deadline, `echo of message ${i} (${size} bytes) did not come back within 20 s`)
        await new Promise<void>((resolve) => {
          waiter = resolve
          setTimeout(resolve, 100)
        })
      }
      assert.equal(gotBytes, expected, `echo of message ${i} (${size} bytes) overshot`)
    }
    const all = Buffer.concat(got)
    let at = 0
    for (const [i, size] of sizes.entries()) {
      const want = new Uint8Array(size).map((_, j) => (i * 31 + j) & 0xff)
      assert.ok(all.subarray(at, at + size).equals(want), `message ${i} (${size} bytes) came back changed`)
      at += size
    }
    await stream.close()
    await conn.close()
  })
})

describe('a flood of UDX OPENs from many source ports (as forged addresses would be)', () => {
  it('takes 16 into their handshake and drops the rest; TCP connections still get in', async () => {
    const hub = new UdxHub()
    const node = await createNode({
      privateKey: await generateNodeKey(),
      listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0'],
      udxHub: hub,
    })
    const dialer = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    const senders: Socket[] = []
    try {
      const at = hub.primary()!.address()
      // 200 OPENs, each from a socket of its own and with its own stream id, and nothing after them
      for (let i = 0; i < 200; i++) {
        const s = createSocket('udp4')
        senders.push(s)
        const open = Buffer.alloc(16)
        open.set([0x57, 0x52, 0x4e, 0x43, 1, 1], 0)
        open.writeUInt32BE(i + 1, 8)
        await new Promise<void>((r) => s.send(open, at.port, at.host, () => r()))
      }
      await eventually(() => hub.primary()!.streams().size === UDX_HANDSHAKES, {
        timeoutMs: 5_000,
        message: `the listener holds ${UDX_HANDSHAKES} streams in their handshake and drops the others`,
      })
      const tcpAddr = node.getMultiaddrs().find((a) => a.toString().includes('/tcp/'))!
      const conn = await dialer.dial(tcpAddr, { signal: AbortSignal.timeout(5_000) })
      assert.equal(conn.status, 'open')
      assert.equal(hub.primary()!.streams().size, UDX_HANDSHAKES)
    } finally {
      for (const s of senders) s.close()
      await Promise.all([node.stop(), dialer.stop()])
    }
  })
})
