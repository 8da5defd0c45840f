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
  pump,
  pumpAt,
  type ReadResult,
  readPaced,
  sourceServer,
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

/** Servers, a daemon pair and its forwards for one describe block. */
function usePair(): {
  pair(): DaemonPair
  fwd(name: string): string
  nextResult(sink: string): Promise<ReadResult>
} {
  let pair: DaemonPair | undefined
  const servers: Closer[] = []
  /** Each sink's waiting result, per connection, in order. */
  const sunk = new Map<string, ((r: ReadResult) => void)[]>()
  let fwd = new Map<string, string>()

  before(async () => {
    const src = await sourceServer(BYTES, 5, RATE)
    servers.push(src)
    const services: Record<string, string> = { src: `/tcp/${src.port}` }
    const waiting: ((r: ReadResult) => void)[] = []
    sunk.set('sink', waiting)
    const sink = await pacedHashServer(pace.fast, (r) => waiting.shift()?.(r))
    servers.push(sink)
    services.sink = `/tcp/${sink.port}`
    pair = await startDaemonPair(services)
    // no service check: its connection to the sink would be taken for the next transfer's
    fwd = await forwardEach(pair, Object.keys(services), { check: false })
  })

  after(async () => {
    await pair?.close()
    await Promise.all(servers.map((s) => s.close()))
  })

  return {
    pair: () => pair!,
    fwd: (name) => fwd.get(name)!,
    nextResult: (name) =>
      new Promise((r) => {
        sunk.get(name)!.push(r)
      }),
  }
}

const roleOf = (end: 'a' | 'b'): string => (end === 'a' ? 'the serving end' : "the client's end")

describe('a daemon frozen (SIGSTOP) for 3 s mid-transfer through a forward', () => {
  const p = usePair()

  for (const end of ['a', 'b'] as const) {
    it(`${roleOf(end)} frozen: a download arrives whole and ends cleanly`, async () => {
      const s = dialForward(p.fwd('src'))
      s.end()
      let got = 0
      s.on('data', (d: Buffer) => {
        got += d.byteLength
      })
      const reading = readPaced(s, pace.fast)
      await freeze(p.pair()[end], FREEZE_AT, 3_000)
      assert.ok(got < BYTES, 'the download was still under way when the daemon thawed')
      assert.deepEqual(await reading, { bytes: BYTES, sha256: ByteSource.digest(BYTES, 5), ending: 'end' })
    })

    it(`${roleOf(end)} frozen: an upload arrives whole and ends cleanly`, async () => {
      const r = await upload(p.fwd('sink'), p.nextResult('sink'), freeze(p.pair()[end], FREEZE_AT, 3_000))
      assert.equal(r.pumpedBeforeThaw, false, 'the upload was still under way when the daemon thawed')
      const whole = { bytes: BYTES, sha256: ByteSource.digest(BYTES, 7), ending: 'end' }
      assert.deepEqual(r.service, whole, r.sent)
      assert.equal(r.client.ending, 'end', r.sent)
      assert.equal(r.sent, `all; answer: ${BYTES} ${whole.sha256}`)
    })
  }
})

// Each on a pair of its own: the check's time-out adapts to the times of the checks before it, and a check caught
// in an earlier freeze would count that freeze and let the next one take longer than 20 s.
for (const end of ['b', 'a'] as const) {
  describe(`${roleOf(end)} frozen (SIGSTOP) for 20 s, longer than the other end's check of the connection`, () => {
    const p = usePair()

    it('an upload under way ends with an error on both ends, and the next connection works', async (t) => {
      const r = await upload(p.fwd('sink'), p.nextResult('sink'), freeze(p.pair()[end], FREEZE_AT, 20_000))
      assert.equal(r.pumpedBeforeThaw, false, 'the upload was still under way when the daemon thawed')
      t.diagnostic(`service: ${r.service.bytes} bytes, ${r.service.ending}; client: ${r.sent}, ${r.client.ending}`)
      assert.notEqual(r.service.ending, 'end', `the service saw a clean end: ${r.sent}`)
      assert.ok(r.service.bytes < BYTES, `the service got ${r.service.bytes} bytes`)
      assert.notEqual(r.client.ending, 'end', `the client saw a clean end: ${r.sent}`)

      const s = dialForward(p.fwd('sink'))
      const answer = readPaced(s, pace.fast)
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      await pump(new ByteSource(4 * MiB, 9), s)
      assert.equal((await answer).ending, 'end')
      assert.equal(Buffer.concat(chunks).toString(), `${4 * MiB} ${ByteSource.digest(4 * MiB, 9)}`)
    })
  })
}
