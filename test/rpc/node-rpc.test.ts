/**
 * RPC between Warren nodes in one process on 127.0.0.1: a host that listens nowhere and is reachable only through its
 * relay, a caller it names in `peers`, and a stranger. Real relay, real nodes, no mocks.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { isWarrenError, WarrenError } from '../../src/errors.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { nodeKey, startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { freePort } from '../support/servers.ts'

describe('RPC between nodes, the host behind a relay', () => {
  let relay: TestRelay
  let host: WarrenNode
  let caller: WarrenNode
  let stranger: WarrenNode
  let ticket: string

  before(async () => {
    const h = await nodeKey()
    const c = await nodeKey()
    relay = await startTestRelay({ allow: [h.id] })
    host = await startNode({
      key: h,
      config: {
        relays: [relay.addrs[0]!],
        peers: { caller: c.id },
        rpc: { public: ['_ping'] },
        services: {
          web: { target: '/tcp/8080', type: 'http', description: 'the wiki' },
          ssh: { target: '/tcp/22' },
          db: { target: '/tcp/5432', allow: [(await nodeKey()).id] },
        },
      },
    })
    host.rpc.register('whoami', (params, ctx) => ({ caller: ctx.caller, params }))
    host.rpc.register('fail', () => {
      throw new WarrenError('ERR_TARGET_UNREACHABLE', 'the backup disk is not mounted', { hint: 'Mount /backup.' })
    })
    caller = await startNode({ key: c })
    stranger = await startNode()
    ticket = host.identity().ticket
  })
  after(async () => {
    await Promise.allSettled([caller.stop(), stranger.stop()])
    await host.stop()
    await relay.stop()
  })

  it('_ping reaches the host through its relay: both sides report the relayed path', async () => {
    const r = await caller.callNode(ticket, '_ping')
    assert.equal(r.id, host.peerId.toString())
    assert.equal(r.path.kind, 'relay')
    assert.equal(r.path.relay, relay.peerId.toString())
    const answer = r.result as { pong: boolean; path: { kind: string; relay?: string } }
    assert.equal(answer.pong, true)
    assert.equal(answer.path.kind, 'relay')
    assert.equal(answer.path.relay, relay.peerId.toString())
    assert.ok(r.rttMs > 0)
  })

  it('_services shows the caller what it may use (two of three), with type and description, never targets', async () => {
    const r = await caller.callNode(ticket, '_services')
    assert.deepEqual(r.result, [
      { name: 'ssh', type: 'tcp' },
      { name: 'web', type: 'http', description: 'the wiki' },
    ])
  })

  it('_info: id, version, uptime, protocols, and the methods this caller may call', async () => {
    const info = (await caller.callNode(ticket, '_info')).result as Record<string, unknown>
    assert.equal(info.id, host.peerId.toString())
    assert.match(info.version as string, /^\d+\.\d+\.\d+/)
    assert.ok((info.protocols as string[]).includes('/warren/rpc/1.0.0'))
    assert.ok((info.protocols as string[]).includes('/warren/service/1.0.0'))
    assert.deepEqual(info.methods, ['_info', '_ping', '_services', 'fail', 'whoami'])
  })

  it("a registered method gets the caller's node id", async () => {
    const r = await caller.callNode(ticket, 'whoami', { x: 1 })
    assert.deepEqual(r.result, { caller: caller.peerId.toString(), params: { x: 1 } })
  })

  it("a method's WarrenError reaches the caller with its code, message and hint", async () => {
    await assert.rejects(caller.callNode(ticket, 'fail'), (err) => {
      assert.ok(isWarrenError(err, 'ERR_TARGET_UNREACHABLE'))
      assert.equal(err.message, `node ${host.peerId}: the backup disk is not mounted`)
      assert.equal(err.hint, 'Mount /backup.')
      return true
    })
  })

  it('a stranger may call the public _ping, and is refused everything else', async () => {
    assert.equal(((await stranger.callNode(ticket, '_ping')).result as { pong: boolean }).pong, true)
    for (const method of ['_services', '_info', 'whoami']) {
      await assert.rejects(stranger.callNode(ticket, method), (err) => {
        assert.ok(isWarrenError(err, 'ERR_RPC_REFUSED'), String(err))
        assert.equal(err.message, `node ${host.peerId} does not allow this node to call "${method}"`)
        assert.equal(
          err.hint,
          `Ask its owner to add this node (${stranger.peerId}) to rpc.allow (or to peers) in its config.json.`,
        )
        return true
      })
    }
  })

  it('a node that is offline: the call fails as a dial does (ERR_DIAL_FAILED)', async () => {
    const gone = await nodeKey()
    const port = await freePort()
    const offline = encodeTicket({
      id: peerIdFromString(gone.id),
      addrs: [multiaddr(`/ip4/127.0.0.1/tcp/${port}`)],
    })
    await assert.rejects(caller.callNode(offline, '_ping'), (err) => {
      assert.ok(isWarrenError(err, 'ERR_DIAL_FAILED'), String(err))
      return true
    })
  })

  it('refuses to register a reserved name', () => {
    assert.throws(
      () => host.rpc.register('_ping', () => 1),
      (err) => isWarrenError(err, 'ERR_RPC_NAME'),
    )
  })
})
