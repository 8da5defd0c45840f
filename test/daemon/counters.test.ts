/**
 * `warren status` counts service streams both ways (bytes, open, ends by cause, per service and per peer), and the
 * daemon logs one line per stream accepted, refused and ended at the default level.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, it } from 'node:test'
import type { NodeStatus } from '../../src/node/types.ts'
import { runCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { ByteSource, MiB } from '../support/transfer.ts'

let pair: DaemonPair
let server: TestServer
before(async () => {
  server = await hashServer()
  pair = await startDaemonPair({ hash: `/tcp/${server.port}` })
})
after(async () => {
  await pair?.close()
  await server?.close()
})

const status = async (home: string): Promise<NodeStatus> => {
  const r = await runCli(['status', '--json'], { home })
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as NodeStatus
}

it('a transfer shows on both sides: incoming on the host, outgoing on the client, per service and per peer', async () => {
  const size = 3 * MiB
  const input = new ByteSource(size, 7).next(size)!
  const sha = createHash('sha256').update(input).digest('hex')
  const r = await runCli(['connect', 'a/hash'], { home: pair.bHome.dir, input })
  assert.equal(r.code, 0, r.stderr)
  const answer = `${size} ${sha}`
  assert.equal(r.stdout, answer)

  await eventually(async () => (await status(pair.aHome.dir)).traffic.incoming.services.hash?.ends.ok === 1, {
    message: 'the host counted the stream end',
  })
  const a = await status(pair.aHome.dir)
  const inc = a.traffic.incoming
  assert.deepEqual(inc.services.hash, { ...inc.services.hash!, bytesIn: size, bytesOut: answer.length, open: 0 })
  assert.equal(inc.peers[pair.bId]?.bytesIn, size)
  assert.equal(a.streams.incoming.total, 1)

  await eventually(async () => (await status(pair.bHome.dir)).traffic.outgoing.services.hash?.ends.ok === 1, {
    message: 'the client counted the stream end',
  })
  const b = await status(pair.bHome.dir)
  const out = b.traffic.outgoing
  assert.equal(out.services.hash?.bytesOut, size)
  assert.equal(out.services.hash?.bytesIn, answer.length)
  assert.equal(out.peers[pair.aId]?.bytesOut, size)
  assert.equal(b.streams.outgoing.total, 1)
  assert.equal(b.streams.total, 1, 'the client counts its outgoing stream')

  const text = await runCli(['status'], { home: pair.bHome.dir })
  assert.match(
    text.stdout,
    /^streams +0 open, 1 since start \(in: 0 open, 0 since start; out: 0 open, 1 since start\)$/m,
  )
  assert.match(text.stdout, /^ {2}service hash +0 open, \d+ B in, 3\.00 MiB out, ended: 1 ok$/m)

  // one info line each for accepted and ended, with peer, service, bytes each way, duration and cause
  await pair.a.waitForLog(
    new RegExp(`info {2}incoming stream accepted: ${pair.bId} → hash \\(127\\.0\\.0\\.1:${server.port}\\)$`, 'm'),
  )
  await pair.a.waitForLog(
    new RegExp(
      `info {2}incoming stream ended: ${pair.bId} → hash, ${size} bytes in, ${answer.length} out, \\d+ ms, ok$`,
      'm',
    ),
  )
  await pair.b.waitForLog(new RegExp(`info {2}outgoing stream opened: hash on ${pair.aId}$`, 'm'))
  await pair.b.waitForLog(
    new RegExp(
      `info {2}outgoing stream ended: hash on ${pair.aId}, ${answer.length} bytes in, ${size} out, \\d+ ms, ok$`,
      'm',
    ),
  )
})

it('a refused stream is counted by cause on both sides and logged with its reason', async () => {
  const r = await runCli(['connect', 'a/nope'], { home: pair.bHome.dir })
  assert.equal(r.code, 5)
  await pair.a.waitForLog(
    new RegExp(`info {2}incoming stream refused: ${pair.bId} → nope: this node has no service "nope"$`, 'm'),
  )
  const a = await status(pair.aHome.dir)
  // a name a does not offer is counted as (unknown): peers choose names, the tallies must not grow with them
  assert.equal(a.traffic.incoming.services['(unknown)']?.ends.refused, 1)
  assert.equal(a.traffic.incoming.services.nope, undefined)
  const b = await status(pair.bHome.dir)
  assert.equal(b.traffic.outgoing.services.nope?.ends.refused, 1)
  assert.equal(b.traffic.outgoing.services.nope?.open, 0)
})
