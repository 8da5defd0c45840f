/**
 * A `type: "http"` service answers a client that half-closes right after its request (`printf 'GET / HTTP/1.0\r\n\r\n'
 * | nc -N`): through a forward, the whole response arrives (SHA-256 of the blob) and the connection ends cleanly.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { rawExchange } from '../support/raw-client.ts'
import { ByteSource, blobHttpServer, MiB } from '../support/transfer.ts'

describe('type http: a request followed at once by the client’s FIN is answered', () => {
  let net: Testnet
  let blob: Awaited<ReturnType<typeof blobHttpServer>>
  let port = 0
  before(async () => {
    blob = await blobHttpServer()
    net = await createTestnet(2, { services: { 1: { blob: { target: `/tcp/${blob.port}`, type: 'http' } } } })
    const fwd = await net.nodes[0]!.addForward({ node: 'n1', service: 'blob', listen: '127.0.0.1:0' })
    port = Number(fwd.listen.slice(fwd.listen.lastIndexOf(':') + 1))
  })
  after(async () => {
    await net?.stop()
    await blob?.close()
  })

  for (const [name, request] of [
    ['HTTP/1.0', `GET /blob/${4 * MiB} HTTP/1.0\r\nHost: blob\r\n\r\n`],
    ['HTTP/1.1 keep-alive', `GET /blob/${4 * MiB} HTTP/1.1\r\nHost: blob\r\n\r\n`],
  ] as const) {
    it(name, async () => {
      const r = await rawExchange('127.0.0.1', port, Buffer.from(request), true)
      assert.equal(r.status, 'HTTP/1.1 200 OK') // Node's HTTP server answers as 1.1, with Connection: close for 1.0
      assert.equal(r.bodyBytes, 4 * MiB)
      assert.equal(r.bodySha256, ByteSource.digest(4 * MiB))
      assert.equal(r.ending, 'end')
    })
  }
})
