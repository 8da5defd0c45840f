/**
 * Revocation through the gateway: the gateway keeps service streams pooled between requests, and unexposing the
 * service on the serving node resets them, so the next request cannot ride a stream opened while access was granted.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { FAST_PATH, forEachEngine } from './engines.ts'

forEachEngine((engine, label) =>
  describe(`revocation through the gateway ${label}`, () => {
    let net: Testnet
    let server: Server
    let served = 0
    let base = ''

    before(async () => {
      server = createServer((_req, res) => {
        served++
        res.end('hello')
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as { port: number }).port
      net = await createTestnet(2, { gatewayFastPath: FAST_PATH[engine], services: { 1: { web: `/tcp/${port}` } } })
      const access = net.nodes[0]!.status().access
      assert.ok(access !== undefined, 'node 0 has no access port')
      base = `http://${access.listen}/http/n1/web/`
    })

    after(async () => {
      await net?.stop()
      await new Promise((r) => server?.close(r))
    })

    it('unexpose resets the pooled streams: the next request is refused, the target sees nothing more', async () => {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(base)
        assert.equal(res.status, 200)
        assert.equal(await res.text(), 'hello')
      }
      const before = served
      net.nodes[1]!.unexpose('web')
      const res = await fetch(base)
      const body = await res.text()
      assert.notEqual(res.status, 200, `served after unexpose: ${body}`)
      assert.match(body, /ERR_UNKNOWN_SERVICE/)
      assert.equal(served, before, 'the target was reached after unexpose')
    })
  }),
)
