/**
 * Stream budgets: nodes this node does not name (strangers, throwaway keys) reach public services on their own
 * budget (`limits.maxPublicStreams` / `maxPublicStreamsPerPeer`), so however many streams they hold open, a named
 * peer still opens its private service and moves its data.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { openServiceStream } from '../../src/services/dial.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { eventually } from '../support/eventually.ts'
import { stalledServer, type TestServer } from '../support/servers.ts'
import { ByteSource, MiB, pace, pacedHashServer, pump } from '../support/transfer.ts'

const PUBLIC_TOTAL = 6
const PUBLIC_PER_PEER = 2
const NAMED_PER_PEER = 8

async function rejectsWith(p: Promise<unknown>, code: string, message: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isWarrenError(err), `not a WarrenError: ${err}`)
    assert.equal(err.code, code)
    assert.equal(err.message, message)
    return true
  })
}

/** Sends `size` bytes of ByteSource through a forward, half-closes, and returns the sink's `<bytes> <sha256>`. */
async function upload(listen: string, size: number): Promise<{ answer: string; ending: string }> {
  const i = listen.lastIndexOf(':')
  const s: Socket = connect({ host: listen.slice(0, i), port: Number(listen.slice(i + 1)), allowHalfOpen: true })
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  const ending = new Promise<string>((resolve) => {
    s.once('end', () => resolve('end'))
    s.once('error', (err) => resolve(err.message))
  })
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve)
    s.once('error', reject)
  })
  await pump(new ByteSource(size, 7), s)
  const how = await ending
  s.destroy()
  return { answer: Buffer.concat(chunks).toString(), ending: how }
}

describe('stream budgets: strangers on public services cannot take named peers’ slots', () => {
  let net: Testnet
  let stalled: TestServer
  let sink: Awaited<ReturnType<typeof pacedHashServer>>
  let strangers: WarrenLibp2p[] = []
  const held: Stream[] = []
  let hostId: string
  let hostAddr: string

  before(async () => {
    stalled = await stalledServer()
    sink = await pacedHashServer(pace.fast)
    net = await createTestnet(2, {
      services: {
        1: {
          pub: { target: `/tcp/${stalled.port}`, allow: ['*'] },
          priv: { target: `/tcp/${sink.port}`, allow: ['n0'] },
        },
      },
      config: {
        1: {
          limits: {
            maxPublicStreams: PUBLIC_TOTAL,
            maxPublicStreamsPerPeer: PUBLIC_PER_PEER,
            maxStreams: 16,
            maxStreamsPerPeer: NAMED_PER_PEER,
          },
        },
      },
    })
    hostId = net.nodes[1]!.peerId.toString()
    hostAddr = `${net.nodes[1]!.identity().addrs.find((a) => a.includes('/tcp/'))!}/p2p/${hostId}`
    // throwaway keys: each stranger is a fresh node id that n1 names nowhere
    strangers = await Promise.all(
      Array.from({ length: PUBLIC_TOTAL / PUBLIC_PER_PEER + 1 }, async () =>
        createNode({ privateKey: await generateNodeKey(), listen: [], preset: 'test' }),
      ),
    )
  })

  after(async () => {
    for (const s of held) s.abort(new Error('test done'))
    await Promise.allSettled(strangers.map((s) => s.stop()))
    await net?.stop()
    await stalled?.close()
    await sink?.close()
  })

  const open = async (stranger: WarrenLibp2p): Promise<Stream> =>
    openServiceStream(await stranger.dial(multiaddr(hostAddr)), 'pub', { timeoutMs: 15_000 })

  it('fills the public budget, then refuses the next stranger stream with the exact reason', async () => {
    const fillers = strangers.slice(0, -1)
    for (const s of fillers) for (let k = 0; k < PUBLIC_PER_PEER; k++) held.push(await open(s))
    assert.equal(held.length, PUBLIC_TOTAL)
    // the streams are held open: the target accepted them and never reads
    assert.equal(stalled.accepted(), PUBLIC_TOTAL)
    assert.equal(net.nodes[1]!.status().streams.active, PUBLIC_TOTAL)

    await rejectsWith(
      open(strangers.at(-1)!),
      'ERR_OVERLOADED',
      `node ${hostId} refused "pub": this node is at its limit of ${PUBLIC_TOTAL} open streams from nodes it does not name (public services)`,
    )
    assert.equal(stalled.accepted(), PUBLIC_TOTAL, 'a refused stream never reaches the target')
  })

  it('limits one stranger to its per-peer share', async () => {
    // free a slot of the first stranger's: the total has room, but the second stranger already holds its share
    held.shift()!.abort(new Error('make room'))
    await eventually(() => net.nodes[1]!.status().streams.active < PUBLIC_TOTAL, {
      message: 'a public stream slot freed',
    })
    await rejectsWith(
      open(strangers[1]!),
      'ERR_OVERLOADED',
      `node ${hostId} refused "pub": this node is at its limit of ${PUBLIC_PER_PEER} open streams per node it does not name (public services)`,
    )
    // the slot goes to a stranger that has none
    held.push(await open(strangers.at(-1)!))
    assert.equal(net.nodes[1]!.status().streams.active, PUBLIC_TOTAL)
  })

  it('still lets the named peer open its private service and move its data whole (SHA-256)', async () => {
    const fwd = await net.nodes[0]!.addForward({ node: 'n1', service: 'priv', listen: '127.0.0.1:0' })
    const size = 8 * MiB + 3
    const res = await upload(fwd.listen, size)
    assert.equal(res.ending, 'end')
    assert.equal(res.answer, `${size} ${ByteSource.digest(size, 7)}`)
    await net.nodes[0]!.removeForward(fwd.listen)
  })

  it('gives the named peer its own budget on the public service too', async () => {
    const mine: Stream[] = []
    for (let k = 0; k < NAMED_PER_PEER; k++) mine.push(await net.nodes[0]!.openService('n1', 'pub'))
    await rejectsWith(
      net.nodes[0]!.openService('n1', 'pub'),
      'ERR_OVERLOADED',
      `node ${hostId} refused "pub": this node is at its limit of ${NAMED_PER_PEER} open service streams per peer`,
    )
    for (const s of mine) s.abort(new Error('done'))
  })
})
