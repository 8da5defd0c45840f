/** Access rules and every failure of the service protocol, with the exact error the user sees. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { isWarrenError } from '../../src/errors.ts'
import { decodeResponse, encodeRequest, SERVICE_PROTOCOL, Status, takeFrame } from '../../src/services/header.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { echoServer, freePort, type TestServer } from '../support/servers.ts'

async function rejectsWith(p: Promise<unknown>, code: string, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isWarrenError(err), `not a WarrenError: ${err}`)
    assert.equal(err.code, code)
    if (typeof message === 'string') assert.equal(err.message, message)
    else assert.match(err.message, message)
    assert.ok(err.hint !== undefined && err.hint.length > 0, 'every error carries a hint')
    return true
  })
}

async function readAll(stream: Stream): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of stream) chunks.push(c instanceof Uint8Array ? c : c.subarray())
  return Buffer.concat(chunks)
}

describe('access rules and service errors', () => {
  let net: Testnet
  let echo: TestServer
  let deadPort: number
  let id1: string

  before(async () => {
    echo = await echoServer()
    deadPort = await freePort()
    // node 2 is a stranger: it knows n1's address but n1 has no alias for it
    net = await createTestnet(3, {
      services: {
        1: {
          web: `/tcp/${echo.port}`, // no allow: every node in peers
          pub: { target: `/tcp/${echo.port}`, allow: ['*'] },
          only0: { target: `/tcp/${echo.port}`, allow: ['n0'] },
          down: { target: `/tcp/${deadPort}`, allow: ['*'] },
          raw: { target: `/tcp/${echo.port}`, allow: ['*'], kubo: true },
        },
      },
      // n1 knows only n0 (so `allow: ['n0']` resolves); n2 stays a stranger to it
      config: { 1: (ids) => ({ peers: { n0: ids[0]! }, limits: { maxStreamsPerPeer: 2 } }) },
    })
    id1 = net.nodes[1]!.peerId.toString()
  })

  after(async () => {
    await net?.stop()
    await echo?.close()
  })

  it('lets peers in `peers` use a service with no allow list, and refuses strangers before the target', async () => {
    const s = await net.nodes[0]!.openService('n1', 'web')
    s.abort(new Error('done'))
    const before = echo.accepted()
    await rejectsWith(
      net.nodes[2]!.openService('n1', 'web'),
      'ERR_NOT_AUTHORIZED',
      `node ${id1} does not allow this node to use "web"`,
    )
    assert.equal(echo.accepted(), before, 'a refused peer must not reach the target')
  })

  it('serves `*` services to anyone and alias allow lists to that alias only', async () => {
    const s = await net.nodes[2]!.openService('n1', 'pub')
    s.send(new TextEncoder().encode('ping'))
    await s.close()
    assert.equal((await readAll(s)).toString(), 'ping')
    const t = await net.nodes[0]!.openService('n1', 'only0')
    t.abort(new Error('done'))
    await rejectsWith(
      net.nodes[2]!.openService('n1', 'only0'),
      'ERR_NOT_AUTHORIZED',
      /does not allow this node to use "only0"/,
    )
  })

  it('names an unknown service', async () => {
    await rejectsWith(
      net.nodes[0]!.openService('n1', 'nope'),
      'ERR_UNKNOWN_SERVICE',
      `node ${id1} has no service "nope"`,
    )
  })

  it("passes on the target's error when it is down", async () => {
    await rejectsWith(
      net.nodes[0]!.openService('n1', 'down'),
      'ERR_TARGET_UNREACHABLE',
      `node ${id1} could not reach the target of "down": connect to 127.0.0.1:${deadPort} failed: ECONNREFUSED`,
    )
  })

  it('refuses past the per-peer stream limit', async () => {
    const a = await net.nodes[0]!.openService('n1', 'pub')
    const b = await net.nodes[0]!.openService('n1', 'pub')
    await rejectsWith(
      net.nodes[0]!.openService('n1', 'pub'),
      'ERR_OVERLOADED',
      `node ${id1} refused "pub": this node is at its limit of 2 open service streams per peer`,
    )
    a.abort(new Error('done'))
    b.abort(new Error('done'))
  })

  it('explains bad names, unknown aliases, missing addresses and failed dials', async () => {
    const n0 = net.nodes[0]!
    await rejectsWith(
      n0.openService('laptop', 'web'),
      'ERR_UNKNOWN_PEER',
      '"laptop" is not a node id, a ticket, or an alias in peers',
    )
    await rejectsWith(
      n0.openService('12D3KooWnope', 'web'),
      'ERR_BAD_NODE_ID',
      /^"12D3KooWnope" is not a valid node id/,
    )
    await rejectsWith(n0.openService('warrenabc', 'web'), 'ERR_BAD_TICKET', /ticket/)
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const { generateNodeKey } = await import('../../src/identity/keys.ts')
    const lonely = peerIdFromPrivateKey(await generateNodeKey()).toString()
    await rejectsWith(n0.openService(lonely, 'web'), 'ERR_NO_ADDRESSES', `no address is known for node ${lonely}`)
    await rejectsWith(
      n0.openService(lonely, 'web', { addrs: [`/ip4/127.0.0.1/tcp/${deadPort}`] }),
      'ERR_DIAL_FAILED',
      new RegExp(`^could not connect to node ${lonely}: `),
    )
    await rejectsWith(
      n0.openService('n1', 'web', { addrs: ['/ip4/1.2.3'] }),
      'ERR_BAD_ADDRESS',
      /^"\/ip4\/1.2.3" is not a valid multiaddr/,
    )
  })

  it('says so when the node is not a Warren node', async () => {
    const { createNode } = await import('../../src/p2p/create.ts')
    const { generateNodeKey } = await import('../../src/identity/keys.ts')
    const plain = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    try {
      const addr = plain.getMultiaddrs()[0]!.toString()
      await rejectsWith(
        net.nodes[0]!.openService(plain.peerId.toString(), 'web', { addrs: [addr] }),
        'ERR_PROTOCOL',
        `node ${plain.peerId} does not speak /warren/service/1.0.0`,
      )
    } finally {
      await plain.stop()
    }
  })

  it('answers BAD_REQUEST to a header version it does not speak', async () => {
    const stream = await net.nodes[0]!.libp2p.dialProtocol(net.nodes[1]!.peerId, SERVICE_PROTOCOL)
    stream.send(encodeRequest({ service: 'pub', version: 7 }))
    const buf = new Uint8ArrayList(await readAll(stream))
    const res = decodeResponse(takeFrame(buf)!)
    assert.deepEqual(res, {
      status: Status.BAD_REQUEST,
      reason: 'header version 7 is not supported (this node speaks 1)',
    })
  })

  it('serves raw /x/<service> streams for kubo services only', async () => {
    const stream = await net.nodes[2]!.libp2p.dialProtocol(net.nodes[1]!.peerId, '/x/raw')
    stream.send(new TextEncoder().encode('kubo says hi'))
    await stream.close()
    assert.equal((await readAll(stream)).toString(), 'kubo says hi')
    await assert.rejects(net.nodes[2]!.libp2p.dialProtocol(net.nodes[1]!.peerId, '/x/pub'), {
      name: 'UnsupportedProtocolError',
    })
  })

  it('applies expose and unexpose at runtime', async () => {
    const n1 = net.nodes[1]!
    n1.expose('late', { target: `/tcp/${echo.port}`, allow: ['*'], kubo: false })
    const s = await net.nodes[2]!.openService('n1', 'late')
    s.abort(new Error('done'))
    assert.throws(() => n1.expose('late', `/tcp/${echo.port}`), { code: 'ERR_SERVICE_EXISTS' })
    assert.throws(
      () => n1.expose('bad', '/tcp/99999'),
      (e: Error) => /"\/tcp\/99999" is not a valid port \(1-65535\)/.test(e.message),
    )
    n1.unexpose('late')
    assert.throws(() => n1.unexpose('late'), { code: 'ERR_SERVICE_NOT_FOUND', message: 'no service "late" is exposed' })
    await rejectsWith(
      net.nodes[2]!.openService('n1', 'late'),
      'ERR_UNKNOWN_SERVICE',
      `node ${id1} has no service "late"`,
    )
  })
})
