/**
 * The destination port in the service request header, over real libp2p streams between two in-process nodes: the
 * host logs the exact port the dialer sent (accepted line, debug line, stream-end line), a request without the
 * extension is served as before, and a malformed port extension gets BAD_REQUEST with the exact reason. Every
 * transfer is an echo checked by SHA-256.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import type { LogLevel } from '../../src/log.ts'
import { decodeResponse, SERVICE_PROTOCOL, Status, takeFrame } from '../../src/services/header.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, type TestServer } from '../support/servers.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function readAll(stream: Stream): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of stream) chunks.push(c instanceof Uint8Array ? c : c.subarray())
  return Buffer.concat(chunks)
}

/** Sends `payload` on an open service stream, half-closes, and returns what came back. */
async function echo(stream: Stream, payload: Uint8Array): Promise<Buffer> {
  for (let off = 0; off < payload.length; off += 16_384) stream.send(payload.subarray(off, off + 16_384))
  await stream.close()
  return readAll(stream)
}

const NAME = [...Buffer.from('pub')]
const framed = (body: number[]): number[] => [body.length, ...body]

describe('destination port in the service request header', () => {
  let net: Testnet
  let target: TestServer
  const lines: { level: LogLevel; message: string }[] = []

  /** Log lines of the host (node 1) that mention `needle`. */
  const logged = (needle: string): string[] =>
    lines.filter((l) => l.message.includes(needle)).map((l) => `${l.level} ${l.message}`)

  before(async () => {
    target = await echoServer()
    net = await createTestnet(2, {
      services: { 1: { pub: { target: `/tcp/${target.port}`, allow: ['*'] } } },
      log: (level, message) => lines.push({ level, message }),
    })
  })
  after(async () => {
    await net?.stop()
    await target?.close()
  })

  for (const port of [80, 5432, 40_123, 65_535]) {
    it(`the host sees port ${port}, exactly as the dialer sent it (1 MiB echo, sha256)`, async () => {
      const host = net.nodes[1]!.peerId.toString()
      const payload = randomBytes(1024 * 1024)
      const stream = await net.nodes[0]!.openService(host, 'pub', { port })
      const back = await echo(stream, payload)
      assert.equal(sha(back), sha(payload))
      const peer = net.nodes[0]!.peerId.toString()
      await eventually(() => logged(`${peer} → pub (port ${port}), ${payload.length} bytes in`).length === 1, {
        timeoutMs: 10_000,
        message: `no stream-end line with port ${port}:\n${lines.map((l) => l.message).join('\n')}`,
      })
      assert.equal(logged(`, destination port ${port})`).filter((l) => l.startsWith('info incoming')).length, 1)
      assert.equal(logged(`service stream from ${peer}: "pub", destination port ${port}`)[0]?.split(' ')[0], 'debug')
    })
  }

  it('serves a request without the port extension, and logs no port', async () => {
    const before = lines.length
    const stream = await net.nodes[0]!.libp2p.dialProtocol(net.nodes[1]!.libp2p.getMultiaddrs(), SERVICE_PROTOCOL)
    stream.send(Uint8Array.from(framed([1, 3, ...NAME])))
    const payload = randomBytes(256 * 1024)
    const buf = new Uint8ArrayList(await echo(stream, payload))
    assert.deepEqual(decodeResponse(takeFrame(buf)!), { status: Status.OK, reason: '' })
    assert.equal(sha(buf.subarray()), sha(payload))
    await eventually(() => lines.slice(before).some((l) => l.message.startsWith('incoming stream ended:')), {
      timeoutMs: 10_000,
    })
    const mine = lines.slice(before).map((l) => l.message)
    assert.ok(
      mine.some((m) => m.endsWith('"pub", no destination port')),
      mine.join('\n'),
    )
    assert.ok(!mine.some((m) => m.includes('port ') && !m.endsWith('no destination port')), mine.join('\n'))
  })

  for (const [what, ext] of [
    ['a one-byte port', [1, 1, 80]],
    ['a three-byte port', [1, 3, 0, 0, 80]],
    ['port 0', [1, 2, 0, 0]],
  ] as const) {
    it(`answers ${what} with BAD_REQUEST "destination port extension is malformed"`, async () => {
      const accepted = target.accepted()
      const stream = await net.nodes[0]!.libp2p.dialProtocol(net.nodes[1]!.libp2p.getMultiaddrs(), SERVICE_PROTOCOL)
      stream.send(Uint8Array.from(framed([1, 3, ...NAME, ...ext])))
      const buf = new Uint8ArrayList(await readAll(stream))
      assert.deepEqual(decodeResponse(takeFrame(buf)!), {
        status: Status.BAD_REQUEST,
        reason: 'destination port extension is malformed',
      })
      assert.equal(buf.byteLength, 0)
      assert.equal(target.accepted(), accepted, 'a malformed header must not reach the target')
    })
  }

  it('refuses a port outside 1-65535 before opening a stream (ERR_USAGE)', async () => {
    const host = net.nodes[1]!.peerId.toString()
    await assert.rejects(net.nodes[0]!.openService(host, 'pub', { port: 70_000 }), {
      code: 'ERR_USAGE',
      message: `cannot ask node ${host} for "pub": destination port must be 1-65535, got 70000`,
    })
  })
})
