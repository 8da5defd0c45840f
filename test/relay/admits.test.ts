/**
 * Circuits to a relay's member from the nodes the member admits are not bounded by the limits for strangers
 * (`/warren/relay/admits/1.0.0`); strangers stay bounded. The policy's decisions, then real relays and nodes on
 * 127.0.0.1 (nodes listen nowhere: the relay is their only path).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { declareAdmits } from '../../src/relay/admits.ts'
import { validateRelayConfig } from '../../src/relay/server/config.ts'
import { RelayPolicy } from '../../src/relay/server/policy.ts'
import { serverInternals } from '../../src/relay/server/server-internals.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

const MiB = 1024 * 1024
const LIMIT = 256 * 1024
const SINK = '/warren-test/sink/1.0.0'
const A = '12D3KooWA1111111111111111111111111111111111111111111'
const B = '12D3KooWB2222222222222222222222222222222222222222222'
const M = '12D3KooWM3333333333333333333333333333333333333333333'

describe('relay policy: members declare whom they admit', () => {
  const settings = (allow: string[]) => {
    const c = validateRelayConfig({ allow: [], limits: { dataBytes: LIMIT, durationSec: 60 } })
    return { ...c, allow }
  }
  const bounded = { dataBytes: LIMIT, durationSec: 60 }

  it('a member that declared nothing gets unlimited circuits; once it declares, only the nodes it names do', () => {
    const p = new RelayPolicy(settings([M]))
    assert.equal(p.circuitLimit(A, M), undefined)
    assert.deepEqual(p.declare(M, { any: false, ids: [A] }), { accepted: true, ids: 1 })
    assert.equal(p.circuitLimit(A, M), undefined)
    assert.deepEqual(p.circuitLimit(B, M), bounded)
    assert.deepEqual(p.declarationOf(M), { any: false, ids: 1 })
    assert.deepEqual(p.declare(M, { any: true, ids: [] }), { accepted: true, ids: 0 })
    assert.equal(p.circuitLimit(B, M), undefined, 'a member with a public service admits everyone')
    p.forget(M)
    assert.equal(p.declarationOf(M), undefined)
  })

  it("a stranger's declaration is refused and lifts nothing; a member taken off the allow list loses its declaration", () => {
    const p = new RelayPolicy(settings([M]))
    assert.deepEqual(p.declare(A, { any: true, ids: [B] }), {
      accepted: false,
      reason: `node ${A} is not on this relay's allow list, so circuits to it keep the limits for strangers whatever it admits`,
    })
    assert.deepEqual(p.circuitLimit(B, A), bounded)
    assert.equal(p.declarationOf(A), undefined)
    p.declare(M, { any: false, ids: [A] })
    p.update(settings([]))
    assert.equal(p.declarationOf(M), undefined)
    assert.deepEqual(p.circuitLimit(A, M), bounded, 'no longer a member: the limits of its reservation')
  })

  it('an allowed source is unlimited whatever the member declared', () => {
    const p = new RelayPolicy(settings([M, B]))
    p.declare(M, { any: false, ids: [] })
    assert.equal(p.circuitLimit(B, M), undefined)
    assert.deepEqual(p.circuitLimit(A, M), bounded)
  })
})

/** A sink on the member for anyone: hashes what it reads, answers `<bytes> <sha256>`; records how streams ended. */
function sinkOn(node: WarrenNode, ended: string[]): Promise<void> {
  return node.libp2p.handle(
    SINK,
    async (stream: Stream) => {
      const hash = createHash('sha256')
      let n = 0
      try {
        for await (const c of stream) {
          hash.update(c.subarray())
          n += c.byteLength
        }
        stream.send(Buffer.from(`${n} ${hash.digest('hex')}`))
        await stream.close()
        ended.push('complete')
      } catch (err) {
        ended.push(`error after ${n} bytes: ${(err as Error).message}`)
      }
    },
    { runOnLimitedConnection: true },
  )
}

describe('relayed circuits to a member: admitted nodes unlimited, strangers bounded (loopback)', () => {
  let hash: TestServer
  let relay: TestRelay
  let host: WarrenNode
  let admitted: WarrenNode
  let stranger: WarrenNode
  const sinkEnds: string[] = []

  before(async () => {
    hash = await hashServer()
    const hostKey = await nodeKey()
    const admittedKey = await nodeKey()
    relay = await startTestRelay({ allow: [hostKey.id], limits: { dataBytes: LIMIT } })
    host = await startNode({
      key: hostKey,
      config: {
        relays: [relay.addrs[0]!],
        services: { hash: { target: `/tcp/${hash.port}`, allow: [admittedKey.id] } },
      },
    })
    await sinkOn(host, sinkEnds)
    admitted = await startNode({ key: admittedKey })
    stranger = await startNode()
    await eventually(() => relay.status().reservations.find((r) => r.node === hostKey.id)?.admits?.ids === 1, {
      message: 'the relay knows whom the host admits',
    })
  })

  after(async () => {
    await Promise.allSettled([admitted?.stop(), stranger?.stop()])
    await host?.stop()
    await relay?.stop()
    await hash?.close()
  })

  it("the allowed member's reservation holds no limit and keeps fast properties (the limit is not deleted)", () => {
    // V8's own check; the flag only allows the %-syntax in functions compiled after it
    setFlagsFromString('--allow-natives-syntax')
    const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean
    const stored = serverInternals(relay.libp2p).reservationStore.get(host.peerId)
    assert.ok(stored !== undefined, 'the member holds a reservation')
    assert.equal(stored.limit, undefined)
    assert.equal(hasFastProperties(stored), true)
  })

  it('a node the member admits moves 8 times the stranger data limit through the relay (sha256 equal)', async () => {
    const r = await transfer(await admitted.openService(host.identity().ticket, 'hash'), 2 * MiB)
    assert.equal(r.answer, `${r.sent} ${r.sha256}`)
    const conn = admitted.libp2p.getConnections(host.peerId)[0]!
    assert.equal(conn.limits, undefined, 'the relay advertised no limit for this circuit')
    const circuit = relay.status().circuits.find((c) => c.src === admitted.peerId.toString())
    assert.equal(circuit?.limit, undefined)
    assert.ok((circuit?.bytes ?? 0) > 2 * MiB, `relayed ${circuit?.bytes} bytes`)
  })

  it('a stranger to the member is cut at the data limit, with an error on both ends', async () => {
    const conn = await stranger.connect(host.identity().ticket)
    const left = conn.limits?.bytes ?? 0n
    assert.ok(left > 0n && left <= BigInt(LIMIT), `data limit left ${left}`)
    const stream = await conn.newStream(SINK, { runOnLimitedConnection: true })
    // libp2p's onDrain does not settle when the stream is aborted while it waits: the stream's 'close' ends the wait
    const closed = new Promise<never>((_, reject) =>
      stream.addEventListener(
        'close',
        (e) => reject((e as { error?: Error }).error ?? new Error('the stream closed')),
        {
          once: true,
        },
      ),
    )
    closed.catch(() => {})
    let failure: string | undefined
    try {
      for (let n = 0; n < 2 * MiB; n += 64 * 1024) {
        if (!stream.send(randomBytes(64 * 1024))) {
          await Promise.race([stream.onDrain({ signal: AbortSignal.timeout(10_000) }), closed])
        }
      }
      await Promise.race([stream.close({ signal: AbortSignal.timeout(10_000) }), closed])
    } catch (err) {
      failure = (err as Error).message
    }
    assert.equal(failure, 'the connection closed before the stream ended', 'the stranger sees an error')
    await eventually(() => sinkEnds.some((e) => e.startsWith('error after ')), {
      message: `the member sees an error (${sinkEnds.join('; ')})`,
    })
    const bytes = Number(/error after (\d+)/.exec(sinkEnds.find((e) => e.startsWith('error'))!)![1])
    assert.ok(bytes < LIMIT, `the member read ${bytes} bytes, under the limit of ${LIMIT}`)
    assert.ok(!sinkEnds.includes('complete'))
  })

  it("the member's new allow entry reaches the relay: that node's next circuit is unlimited", async () => {
    host.expose('hash2', { target: `/tcp/${hash.port}`, allow: [stranger.peerId.toString()], kubo: false })
    await host.relayAdmits!.flush() // resolves once the relay has it
    const res = relay.status().reservations.find((r) => r.node === host.peerId.toString())
    assert.deepEqual(res?.admits, { any: false, ids: 2 })
    await eventually(() => stranger.libp2p.getConnections(host.peerId).length === 0, {
      message: 'the bounded connection is gone',
    })
    const r = await transfer(await stranger.openService(host.identity().ticket, 'hash2'), 2 * MiB)
    assert.equal(r.answer, `${r.sent} ${r.sha256}`)
  })

  it('a node admitted by a token declares once the token admitted it', async () => {
    const token = 'a-shared-token-of-the-relay-0123456789'
    const tokenRelay = await startTestRelay({ tokens: [token], limits: { dataBytes: LIMIT } })
    const relayId = tokenRelay.peerId.toString()
    const member = await startNode({
      config: {
        relays: [tokenRelay.addrs[0]!],
        relayTokens: { [relayId]: token },
        services: { hash: { target: `/tcp/${hash.port}`, allow: [admitted.peerId.toString()] } },
      },
    })
    try {
      const res = await eventually(
        () => tokenRelay.status().reservations.find((r) => r.node === member.peerId.toString() && r.admits !== null),
        { message: 'the relay took the declaration of the node it admitted by token' },
      )
      assert.deepEqual(
        { admission: res.admission, admits: res.admits },
        { admission: 'token', admits: { any: false, ids: 1 } },
      )
    } finally {
      await member.stop()
      await tokenRelay.stop()
    }
  })

  it('a node the relay does not allow is told its declaration counts for nothing', async () => {
    const answer = await declareAdmits(admitted.libp2p, peerIdFromString(relay.peerId.toString()), {
      any: true,
      ids: [],
    })
    assert.deepEqual(answer, {
      accepted: false,
      reason: `node ${admitted.peerId} is not on this relay's allow list, so circuits to it keep the limits for strangers whatever it admits`,
    })
  })
})
