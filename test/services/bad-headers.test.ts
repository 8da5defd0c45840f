/**
 * Malformed request headers sent raw over a real libp2p stream: each one is answered with BAD_REQUEST and the
 * exact reason (never a reset), and none reaches the target. A well-formed header with an unknown extension is
 * served, checked by SHA-256 of an echoed transfer.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { decodeResponse, SERVICE_PROTOCOL, Status, takeFrame } from '../../src/services/header.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { echoServer, type TestServer } from '../support/servers.ts'

async function readAll(stream: Stream): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of stream) chunks.push(c instanceof Uint8Array ? c : c.subarray())
  return Buffer.concat(chunks)
}

const NAME = [...Buffer.from('pub')]
/** A request frame: length prefix (one byte, all bodies here are short) then the body. */
const framed = (body: number[]): number[] => [body.length, ...body]

const CASES: { what: string; bytes: number[]; end?: boolean; reason: string }[] = [
  { what: 'an extension tag with no length', bytes: framed([1, 3, ...NAME, 7]), reason: 'extension length is missing' },
  {
    what: 'an extension length that never ends',
    bytes: framed([1, 3, ...NAME, 7, 0x80]),
    reason: 'extension length is malformed',
  },
  {
    what: 'an extension length of more than 9 bytes',
    bytes: framed([1, 3, ...NAME, 7, ...Array(10).fill(0xff), 1]),
    reason: 'extension length is malformed',
  },
  {
    what: 'an extension longer than the frame',
    bytes: framed([1, 3, ...NAME, 7, 5, 1]),
    reason: 'extension runs past the end of the header',
  },
  { what: 'a zero frame length', bytes: [0], reason: 'header length 0 is outside 1..4096' },
  { what: 'a frame length over 4096', bytes: [0x88, 0x27], reason: 'header length 5000 is outside 1..4096' },
  {
    what: 'a frame length prefix that never ends',
    bytes: [0xff, 0xff, 0xff],
    reason: 'header length prefix is malformed',
  },
  { what: 'a one-byte body', bytes: framed([1]), reason: 'request header is too short' },
  { what: 'an empty service name', bytes: framed([1, 0]), reason: 'service name length is invalid' },
  { what: 'a name longer than the frame', bytes: framed([1, 9, ...NAME]), reason: 'service name length is invalid' },
  { what: 'a name that is not UTF-8', bytes: framed([1, 2, 0xc3, 0x28]), reason: 'service name is not UTF-8' },
  {
    what: 'a stream that ends inside the header',
    bytes: [10, 1, 3, ...NAME],
    end: true,
    reason: 'stream ended before a complete header arrived',
  },
]

describe('malformed service headers get BAD_REQUEST', () => {
  let net: Testnet
  let echo: TestServer

  before(async () => {
    echo = await echoServer()
    net = await createTestnet(2, { services: { 1: { pub: { target: `/tcp/${echo.port}`, allow: ['*'] } } } })
  })

  after(async () => {
    await net?.stop()
    await echo?.close()
  })

  for (const c of CASES) {
    it(`answers ${c.what} with BAD_REQUEST "${c.reason}"`, async () => {
      const before = echo.accepted()
      const stream = await net.nodes[0]!.libp2p.dialProtocol(net.nodes[1]!.libp2p.getMultiaddrs(), SERVICE_PROTOCOL)
      stream.send(Uint8Array.from(c.bytes))
      if (c.end === true) await stream.close()
      // a reset would make readAll throw: the host must answer and close cleanly
      const buf = new Uint8ArrayList(await readAll(stream))
      assert.deepEqual(decodeResponse(takeFrame(buf)!), { status: Status.BAD_REQUEST, reason: c.reason })
      assert.equal(buf.byteLength, 0, 'nothing follows the response')
      assert.equal(echo.accepted(), before, 'a malformed header must not reach the target')
    })
  }

  it('skips an unknown extension and serves the stream (SHA-256 of the echo)', async () => {
    const stream = await net.nodes[0]!.libp2p.dialProtocol(net.nodes[1]!.libp2p.getMultiaddrs(), SERVICE_PROTOCOL)
    stream.send(Uint8Array.from(framed([1, 3, ...NAME, 9, 2, 0xaa, 0xbb, 200, 0])))
    const payload = Buffer.alloc(256 * 1024)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 8)) & 0xff
    for (let off = 0; off < payload.length; off += 16_384) stream.send(payload.subarray(off, off + 16_384))
    await stream.close()
    const buf = new Uint8ArrayList(await readAll(stream))
    assert.deepEqual(decodeResponse(takeFrame(buf)!), { status: Status.OK, reason: '' })
    const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
    assert.equal(buf.byteLength, payload.length)
    assert.equal(digest(buf.subarray()), digest(payload))
  })
})
