/**
 * A daemon frozen in the middle of a transfer (SIGSTOP, as a suspended laptop or a paused VM freezes it) and thawed
 * again (SIGCONT), through `warren forward` between two real daemons. The bytes come from a producer slower than the
 * network and go to a reader as fast as it, so that the path beyond the frozen daemon holds little when it freezes,
 * and the bytes produced while it is frozen must pass through it once it thaws:
 * - frozen for a few seconds, less than any check of the connection takes: every transfer arrives whole (SHA-256 of
 *   all of it) and ends cleanly, whichever end was frozen and whichever way the bytes went;
 * - frozen longer than the other end's check of the connection (a PING every 10 s, 5 s to answer): the other end
 *   aborts the connection, the frozen one finds it gone when it thaws, and both the service and the client see an
 *   error, never a clean end after part of the bytes; the next connection works.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { TestDaemon } from '../support/daemon.ts'
import { type DaemonPair, dialForward, forwardEach, startDaemonPair } from '../support/daemon-pair.ts'
import {
  ByteSource,
  MiB,
  pace,
  pacedHashServer,
  pacedSourceServer,
  pump,
  pumpAt,
  type ReadResult,
  readPaced,
} from '../support/transfer.ts'

/** 48 MiB at 8 MiB/s: 6 s, of which the daemon is frozen from 0.5 s to 3.5 s. */
const BYTES = 48 * MiB
const RATE = 8 * MiB
const FREEZE_AT = 500

type Closer = { port: number; close(): Promise<void> }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Freezes `d` after `afterMs` for `forMs`; the daemon is thawed in every outcome. */
async function freeze(d: TestDaemon, afterMs: number, forMs: number): Promise<void> {
  await sleep(afterMs)
  const pid = d.child.pid!
  process.kill(pid, 'SIGSTOP')
  try {
    await sleep(forMs)
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}

/** An upload of {@link BYTES} to a sink through a forward: the client's view and the service's. */
async function upload(
  listen: string,
  service: Promise<ReadResult>,
  frozen: Promise<void>,
): Promise<{ client: ReadResult; sent: string; service: ReadResult; pumpedBeforeThaw: boolean }> {
  const s = dialForward(listen)
  const answer = readPaced(s, pace.fast)
  const chunks: Buffer[] = []
  s.on('data', (d: Buffer) => chunks.push(d))
  let pumped = false
  const pumping = pumpAt(new ByteSource(BYTES, 7), s, RATE).then(
    () => {
      pumped = true
      return 'all'
    },
    (err: Error) => err.message,
  )
  await frozen
  const pumpedBeforeThaw = pumped
  const sent = await pumping
  return {
    client: await answer,
    sent: `${sent}; answer: ${Buffer.concat(chunks).toString()}`,
    service: await service,
    pumpedBeforeThaw,
  }
}

describe('a daemon frozen (SIGSTOP) mid-transfer through a forward', () => {
  let pair: DaemonPair
  const servers: Closer[] = []
  /** Each sink's result, per connection, in order. */
  const sunk = new Map<string, ((r: ReadResult) => void)[]>()
  let fwd = new Map<string, string>()
  const nextResult = (sink: string): Promise<ReadResult> =>
    new Promise((r) => {
      sunk.get(sink)!.push(r)
    })

  before(async () => {
    const src = await pacedSourceServer(BYTES, 5, RATE)
    servers.push(src)
    const services: Record<string, string> = { src: `/tcp/${src.port}` }
    for (const name of ['sink', 'longsink']) {
      const waiting: ((r: ReadResult) => void)[] = []
      sunk.set(name, waiting)
      const sink = await pacedHashServer(pace.fast, (r) => waiting.shift()?.(r))
      servers.push(sink)
      services[name] = `/tcp/${sink.port}`
    }
    pair = await startDaemonPair(services)
    fwd = await forwardEach(pair, Object.keys(services))
  })

  after(async () => {
    await pair?.close()
    await Promise.all(servers.map((s) => s.close()))
  })

  for (const end of ['a', 'b'] as const) {
    const role = end === 'a' ? 'the serving end' : "the client's end"

    it(`${role} frozen for 3 s: a download arrives whole and ends cleanly`, async () => {
      const s = dialForward(fwd.get('src')!)
      s.end()
      let got = 0
      s.on('data', (d: Buffer) => {
        got += d.byteLength
      })
      const reading = readPaced(s, pace.fast)
      await freeze(pair[end], FREEZE_AT, 3_000)
      assert.ok(got < BYTES, 'the download was still under way when the daemon thawed')
      assert.deepEqual(await reading, { bytes: BYTES, sha256: ByteSource.digest(BYTES, 5), ending: 'end' })
    })

    it(`${role} frozen for 3 s: an upload arrives whole and ends cleanly`, async () => {
      const r = await upload(fwd.get('sink')!, nextResult('sink'), freeze(pair[end], FREEZE_AT, 3_000))
      assert.equal(r.pumpedBeforeThaw, false, 'the upload was still under way when the daemon thawed')
      const whole = { bytes: BYTES, sha256: ByteSource.digest(BYTES, 7), ending: 'end' }
      assert.deepEqual(r.service, whole, r.sent)
      assert.equal(r.client.ending, 'end', r.sent)
      assert.equal(r.sent, `all; answer: ${BYTES} ${whole.sha256}`)
    })
  }

  for (const end of ['b', 'a'] as const) {
    const role = end === 'a' ? 'the serving end' : "the client's end"
    it(`${role} frozen for 25 s, longer than the other end's check of the connection: an error on both ends`, async (t) => {
      const r = await upload(fwd.get('longsink')!, nextResult('longsink'), freeze(pair[end], FREEZE_AT, 25_000))
      assert.equal(r.pumpedBeforeThaw, false, 'the upload was still under way when the daemon thawed')
      t.diagnostic(`service: ${r.service.bytes} bytes, ${r.service.ending}; client: ${r.sent}, ${r.client.ending}`)
      assert.notEqual(r.service.ending, 'end', `the service saw a clean end: ${r.sent}`)
      assert.ok(r.service.bytes < BYTES, `the service got ${r.service.bytes} bytes`)
      assert.notEqual(r.client.ending, 'end', `the client saw a clean end: ${r.sent}`)
      // and the pair carries the next connection
      const s = dialForward(fwd.get('sink')!)
      const answer = readPaced(s, pace.fast)
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      await pump(new ByteSource(4 * MiB, 9), s)
      assert.equal((await answer).ending, 'end')
      assert.equal(Buffer.concat(chunks).toString(), `${4 * MiB} ${ByteSource.digest(4 * MiB, 9)}`)
    })
  }
})
