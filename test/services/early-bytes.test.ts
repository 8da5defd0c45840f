/**
 * A forwarded connection's first bytes leave with the service request, before the host's answer
 * (WarrenNode.pipeService, docs/protocol.md): they reach the target whole once the host answers OK, and on a refusal
 * they never reach a target, the client is reset and the caller gets the exact error of a refusal.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { echoServer, freePort, type TestServer } from '../support/servers.ts'

/** A client connected to a local listener; resolves with both ends (the accepted one is what a forward pipes). */
async function socketPair(server: Server): Promise<{ client: Socket; accepted: Socket }> {
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
  const { port } = server.address() as { port: number }
  const client = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  return { client, accepted: await accepted }
}

/** Everything the client receives until its end, or how it failed. */
function received(client: Socket): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    client.on('data', (d: Buffer) => chunks.push(d))
    client.once('end', () => resolve({ data: Buffer.concat(chunks) }))
    client.once('error', (err: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(chunks), error: err.code }))
  })
}

describe('first bytes sent before the host answers', () => {
  let net: Testnet
  let echo: TestServer
  let local: Server

  before(async () => {
    echo = await echoServer()
    const deadPort = await freePort()
    net = await createTestnet(3, {
      services: { 1: { web: `/tcp/${echo.port}`, down: { target: `/tcp/${deadPort}`, allow: ['*'] } } },
      config: { 1: (ids) => ({ peers: { n0: ids[0]! } }) },
    })
    local = createServer({ allowHalfOpen: true })
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
  })

  after(async () => {
    await net?.stop()
    await echo?.close()
    await new Promise((resolve) => local?.close(resolve))
  })

  it('carries bytes written at once and a half-close to the target, whole and in order', async () => {
    const { client, accepted } = await socketPair(local)
    const payload = randomBytes(256 * 1024 + 17)
    client.end(payload) // everything, and the FIN, before the service stream even exists
    const got = received(client)
    const res = await net.nodes[0]!.pipeService(accepted, 'n1', 'web')
    const { data, error } = await got
    assert.equal(error, undefined)
    assert.equal(res.error, undefined)
    assert.equal(res.bytesOut, payload.length)
    assert.equal(res.bytesIn, payload.length)
    assert.equal(createHash('sha256').update(data).digest('hex'), createHash('sha256').update(payload).digest('hex'))
  })

  it('a request and its FIN that reach the host before its protocol answer, 50 at once: each echoed whole', async () => {
    // 16 KiB and the FIN fit the first frames: the host's stream has ended before its header is read
    const pairs = []
    for (let i = 0; i < 50; i++) {
      const { client, accepted } = await socketPair(local)
      const payload = Buffer.concat([Buffer.from(`#${i}:`), randomBytes(16 * 1024)])
      client.end(payload)
      pairs.push({ payload, accepted, got: received(client) })
    }
    const results = await Promise.all(pairs.map((p) => net.nodes[0]!.pipeService(p.accepted, 'n1', 'web')))
    for (const [i, p] of pairs.entries()) {
      const { data, error } = await p.got
      assert.equal(error, undefined, `connection ${i}`)
      assert.equal(results[i]!.error, undefined, `connection ${i}`)
      assert.equal(
        createHash('sha256').update(data).digest('hex'),
        createHash('sha256').update(p.payload).digest('hex'),
        `connection ${i}`,
      )
    }
  })

  it('a refused peer: its early bytes never reach the target, the client is reset, the error is exact', async () => {
    const { client, accepted } = await socketPair(local)
    client.write(randomBytes(4096))
    const got = received(client)
    const before = echo.accepted()
    const id1 = net.nodes[1]!.peerId.toString()
    await assert.rejects(net.nodes[2]!.pipeService(accepted, 'n1', 'web'), (err: unknown) => {
      assert.ok(isWarrenError(err))
      assert.equal(err.code, 'ERR_NOT_AUTHORIZED')
      assert.equal(err.message, `node ${id1} does not allow this node to use "web"`)
      return true
    })
    assert.equal((await got).error, 'ECONNRESET')
    assert.equal(echo.accepted(), before, 'a refused peer must not reach the target')
  })

  it('an unreachable target: the client is reset and the error names the target', async () => {
    const { client, accepted } = await socketPair(local)
    client.write(randomBytes(100))
    const got = received(client)
    await assert.rejects(net.nodes[0]!.pipeService(accepted, 'n1', 'down'), (err: unknown) => {
      assert.ok(isWarrenError(err))
      assert.equal(err.code, 'ERR_TARGET_UNREACHABLE')
      assert.match(
        err.message,
        /could not reach the target of "down": connect to 127\.0\.0\.1:\d+ failed: ECONNREFUSED/,
      )
      return true
    })
    assert.equal((await got).error, 'ECONNRESET')
  })
})
