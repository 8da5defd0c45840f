/**
 * The Delegated Routing V1 HTTP API on a relay: `GET /routing/v1/peers/{id}` with base58 and base36 ids, JSON and
 * NDJSON, unknown ids (200, empty), bad ids (400 with a message) and a browser's CORS preflight.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { base32 } from 'multiformats/bases/base32'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { createDhtTestnet, type DhtTestnet } from '../../src/testing/dht-testnet.ts'

describe('delegated routing HTTP API on relays', () => {
  let net: DhtTestnet
  let base: string

  before(async () => {
    net = await createDhtTestnet({ nodes: 4, relays: 2 })
    await net.waitPublished(20_000)
    base = net.relays[0]!.status().routing!.url
  })
  after(async () => {
    await net?.stop()
  })

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers })

  it('answers with the addresses of a node by base58 and base36 id (JSON), with CORS', async () => {
    // node 1 holds its reservation on relay 1: relay 0 knows it through the DHT only
    for (const i of [0, 1]) {
      const node = net.nodes[i]!
      const published = node.discovery!.publisher!.status().addrs
      for (const id of [node.peerId.toString(), formatNodeIdBase36(node.peerId)]) {
        const res = await get(`/routing/v1/peers/${id}`, { Accept: 'application/json' })
        assert.equal(res.status, 200)
        assert.equal(res.headers.get('content-type'), 'application/json')
        assert.equal(res.headers.get('access-control-allow-origin'), '*')
        const body = (await res.json()) as { Peers: Array<{ Schema: string; ID: string; Addrs: string[] }> }
        assert.equal(body.Peers.length, 1)
        assert.equal(body.Peers[0]!.Schema, 'peer')
        assert.equal(body.Peers[0]!.ID, node.peerId.toString())
        for (const a of published) assert.ok(body.Peers[0]!.Addrs.includes(a), `${a} in ${body.Peers[0]!.Addrs}`)
      }
    }
  })

  it('NDJSON by Accept; unknown ids are a 200 with an empty list', async () => {
    const node = net.nodes[2]!
    const nd = await get(`/routing/v1/peers/${node.peerId.toCID().toString(base32)}`, {
      Accept: 'application/x-ndjson',
    })
    assert.equal(nd.status, 200)
    assert.equal(nd.headers.get('content-type'), 'application/x-ndjson')
    const lines = (await nd.text()).split('\n')
    assert.equal(lines.at(-1), '')
    assert.equal(lines.length, 2)
    assert.equal((JSON.parse(lines[0]!) as { ID: string }).ID, node.peerId.toString())

    const unknown = peerIdFromPrivateKey(await generateNodeKey()).toString()
    const empty = await get(`/routing/v1/peers/${unknown}`)
    assert.equal(empty.status, 200)
    assert.deepEqual(await empty.json(), { Peers: [] })
    assert.equal(empty.headers.get('cache-control'), 'public, max-age=15')
    const emptyNd = await get(`/routing/v1/peers/${unknown}`, { Accept: 'application/x-ndjson' })
    assert.equal(emptyNd.status, 200)
    assert.equal(await emptyNd.text(), '')
  })

  it('bad ids are a 400 with a message; other paths and methods are refused', async () => {
    const cases: Array<[string, string]> = [
      ['nonsense', '"nonsense" is neither a base58 peer id (12D3KooW…) nor a CIDv1 peer id (k51…, bafz…)\n'],
      ['12D3KooWshort', '"12D3KooWshort" is not a base58 peer id (Incorrect length)\n'],
      [
        'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
        '"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi" is a CID but not of a peer id (Supplied PeerID CID is invalid)\n',
      ],
      ['', 'the peer id is missing: use /routing/v1/peers/<peer id>\n'],
    ]
    for (const [id, message] of cases) {
      const res = await get(`/routing/v1/peers/${id}`)
      assert.equal(res.status, 400, id)
      assert.equal(res.headers.get('access-control-allow-origin'), '*')
      assert.equal(await res.text(), message)
    }
    const other = await get('/routing/v1/providers/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')
    assert.equal(other.status, 404)
    assert.match(await other.text(), /this relay answers GET \/routing\/v1\/peers\/<peer id>/)
    const post = await fetch(`${base}/routing/v1/peers/${net.nodes[0]!.peerId}`, { method: 'POST' })
    assert.equal(post.status, 405)
    assert.equal(post.headers.get('allow'), 'GET, HEAD, OPTIONS')
  })

  it('answers a browser CORS preflight', async () => {
    const res = await fetch(`${base}/routing/v1/peers/${net.nodes[0]!.peerId}`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'accept',
      },
    })
    assert.equal(res.status, 204)
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /\bGET\b/)
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /\bAccept\b/i)
  })
})
