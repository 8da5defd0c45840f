/**
 * A storm of connections through two real daemons that end in every way real clients and services end them, many
 * at once on one peer connection: clean exchanges both ways, clients that reset at once, during the service's
 * connect, mid-transfer or while the service is silent, services that reset at once or mid-transfer, downloads
 * abandoned half-way, clients that end before saying anything. The mix comes from a seeded generator
 * (WARREN_CHAOS_SEED repeats a run, and a failure names its seed; WARREN_CHAOS_ONLY=echo,download runs only the
 * scenarios named).
 *
 * Every clean exchange must arrive whole (SHA-256) and end cleanly; every connection the service resets must end
 * with an error at the client, never a clean end. Afterwards nothing may be left behind: no service stream, no
 * forwarded connection, no connection to the service, no file descriptor in either daemon beyond those it held
 * before, and a 16 MiB exchange through the same forward is whole.
 *
 * A third storm kills the serving daemon (SIGKILL) a third of the way in and starts it again: the exchanges it cuts
 * must end with an error at the client (never a clean end after part of the bytes), those that start once it is back
 * must all be whole again, and nothing may be left open in the new daemon or in the client's.
 */
import assert from 'node:assert/strict'
import { readdirSync, readlinkSync } from 'node:fs'
import type { Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { socks5Connect } from '../support/access-clients.ts'
import { type ChaosTarget, chaosPreamble, chaosTarget } from '../support/chaos-target.ts'
import type { TestDaemon } from '../support/daemon.ts'
import { type DaemonPair, dialForward, forwardEach, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { generator, planOf, seedOf } from '../support/seeded.ts'
import { ByteSource, MiB, pace, pump, readPaced } from '../support/transfer.ts'

const KiB = 1024
const CONNECTIONS = 400
const AT_ONCE = 32
/** Longest any one connection may take before it counts as hung. */
const CONNECTION_LIMIT_MS = 30_000

/** A connection's dice, and whether an error is an acceptable end for an exchange (a daemon restarts meanwhile). */
type Rand = { int(max: number): number; lenient: boolean; excused(ending: string): boolean }
type Dial = () => Promise<Socket>
/** One connection's behaviour; resolves with what went wrong, or undefined. */
type Scenario = (dial: Dial, r: Rand) => Promise<string | undefined>

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const ended = (s: Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())))

/** Resets `s` once `n` bytes have come (or at its end), reading as fast as they come. */
function resetAfter(s: Socket, n: number): Promise<void> {
  let got = 0
  const check = (): void => {
    if (got >= n && !s.destroyed) s.resetAndDestroy()
  }
  s.on('data', (d: Buffer) => {
    got += d.length
    check()
  })
  s.on('error', () => {})
  s.on('end', () => s.resetAndDestroy())
  check()
  return ended(s)
}

const wholeAndClean = (
  what: string,
  got: { bytes: number; sha256: string; ending: string },
  size: number,
  seed: number,
  r?: Rand,
): string | undefined =>
  (got.bytes === size && got.sha256 === ByteSource.digest(size, seed) && got.ending === 'end') ||
  r?.excused(got.ending) === true
    ? undefined
    : `${what} ${size} B: got ${got.bytes} B, ${got.sha256 === ByteSource.digest(size, seed) ? 'same' : 'other'} hash, ending "${got.ending}"`

/** Sends `size` bytes to the echoing service, ends, and checks that the same bytes came back and ended cleanly. */
async function echoExchange(dial: Dial, size: number, seed: number, r?: Rand): Promise<string | undefined> {
  const s = await dial()
  const seen = readPaced(s, pace.fast)
  s.write(chaosPreamble('E'))
  const sent = await pump(new ByteSource(size, seed), s).then(
    () => '',
    (e: Error) => e.message,
  )
  const got = await seen
  if (sent !== '' && r?.excused(got.ending) !== true) return `echo ${size} B: sending failed: ${sent}`
  return wholeAndClean('echo', got, size, seed, r)
}

const scenarios: Record<string, Scenario> = {
  echo: (dial, r) => echoExchange(dial, r.int(256 * KiB), r.int(256), r),
  async hash(dial, r) {
    const size = r.int(MiB)
    const seed = r.int(256)
    const s = await dial()
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    const seen = readPaced(s, pace.fast)
    s.write(chaosPreamble('H'))
    await pump(new ByteSource(size, seed), s).catch(() => {})
    const got = await seen
    const answer = Buffer.concat(chunks).toString()
    const want = `${size} ${ByteSource.digest(size, seed)}`
    return (answer === want && got.ending === 'end') || r.excused(got.ending)
      ? undefined
      : `hash ${size} B: "${answer}", ending "${got.ending}"`
  },
  async download(dial, r) {
    const size = r.int(2 * MiB)
    const seed = r.int(256)
    const s = await dial()
    const seen = readPaced(s, pace.fast)
    s.end(chaosPreamble('F', size, seed))
    return wholeAndClean('download', await seen, size, seed, r)
  },
  async serviceResetsMidway(dial, r) {
    const at = r.int(64 * KiB)
    const s = await dial()
    const seen = readPaced(s, pace.fast)
    s.write(chaosPreamble('R', at))
    await pump(new ByteSource(at + 64 * KiB), s, false).catch(() => {})
    const got = await seen
    return got.ending === 'end' ? `the service reset after ${at} B, the client saw a clean end` : undefined
  },
  async serviceResetsAtOnce(dial) {
    const s = await dial()
    const seen = readPaced(s, pace.fast)
    s.write(chaosPreamble('X'))
    const got = await seen
    return got.ending === 'end' ? 'the service reset at once, the client saw a clean end' : undefined
  },
  async clientResetsAtOnce(dial, r) {
    const s = await dial()
    s.on('error', () => {})
    const how = r.int(3)
    const go = (): void => {
      if (how >= 1) s.write(chaosPreamble('E'))
      if (how >= 2) s.write(Buffer.alloc(64 * KiB))
      s.resetAndDestroy()
    }
    if (s.connecting) s.once('connect', go)
    else go()
    await ended(s)
    return undefined
  },
  async clientResetsMidEcho(dial, r) {
    const s = await dial()
    s.write(chaosPreamble('E'))
    const done = resetAfter(s, r.int(512 * KiB))
    void pump(new ByteSource(4 * MiB), s, false).catch(() => {})
    await done
    return undefined
  },
  async clientResetsOnSilence(dial, r) {
    const s = await dial()
    s.on('error', () => {})
    s.write(chaosPreamble('S', 1_000))
    s.write(Buffer.alloc(128 * KiB))
    await sleep(r.int(150))
    s.resetAndDestroy()
    await ended(s)
    return undefined
  },
  async downloadAbandoned(dial, r) {
    const s = await dial()
    const done = resetAfter(s, r.int(MiB))
    s.end(chaosPreamble('F', 8 * MiB))
    await done
    return undefined
  },
  async clientEndsFirst(dial, r) {
    const s = await dial()
    const seen = readPaced(s, pace.fast)
    s.end(r.int(2) === 0 ? Buffer.alloc(0) : chaosPreamble('E').subarray(0, 4))
    const got = await seen
    return (got.bytes === 0 && got.ending === 'end') || r.excused(got.ending)
      ? undefined
      : `ended first: ${got.bytes} B, ending "${got.ending}"`
  },
}

/** Runs `scenario` under a time limit; a hang is a problem too. */
async function bounded(name: string, run: Promise<string | undefined>, lenient: boolean): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<string>((r) => {
    timer = setTimeout(() => r(`${name}: hung for ${CONNECTION_LIMIT_MS} ms`), CONNECTION_LIMIT_MS)
  })
  try {
    // a connection refused outright (the access port's SOCKS5 reply) is an error too: loud, if not whole
    const problem = await Promise.race([run.catch((e: Error) => (lenient ? undefined : `threw ${e.message}`)), limit])
    return problem === undefined ? undefined : `${name}: ${problem}`
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs {@link CONNECTIONS} scenarios, {@link AT_ONCE} at a time; resolves with the problems, the mix and the
 * exchanges excused for an error. `midway`, when given, runs once a third of the connections have started, while
 * the second third goes on (a daemon's restart): an error is then an acceptable end for an exchange, a clean end
 * after the wrong bytes never. The last third starts once `midway` is over and must be whole again.
 */
async function storm(
  dial: Dial,
  seed: number,
  midway?: () => Promise<void>,
): Promise<{ problems: string[]; mix: Record<string, number>; excused: number }> {
  const next = generator(seed)
  let excused = 0
  const dice = (lenient: boolean): Rand => ({
    int: (max) => Math.floor(next() * max),
    lenient,
    excused: (ending) => {
      if (!lenient || ending === 'end') return false
      excused++
      return true
    },
  })
  const strict = dice(false)
  const lenient = dice(midway !== undefined)
  const { plan, mix } = planOf(Object.keys(scenarios), CONNECTIONS, strict.int)
  const problems: string[] = []
  let i = 0
  let interlude: Promise<void> | undefined
  const worker = async (): Promise<void> => {
    while (i < plan.length) {
      if (midway !== undefined && interlude === undefined && i >= plan.length / 3) interlude = midway()
      // the last third starts once the interlude is over, and must then be whole again, every one
      const after = midway !== undefined && i >= (plan.length * 2) / 3
      if (after) await interlude
      const name = plan[i++]
      if (name === undefined) break
      const problem = await bounded(
        name,
        scenarios[name]!(dial, after ? strict : lenient),
        !after && midway !== undefined,
      )
      if (problem !== undefined) problems.push(problem)
    }
  }
  await Promise.all(Array.from({ length: AT_ONCE }, worker))
  await interlude
  return { problems, mix, excused }
}

/** A daemon's open descriptors, each as `<number>:<what it is>` (a socket's inode tells two sockets apart). */
const descriptors = (d: TestDaemon): string[] =>
  readdirSync(`/proc/${d.child.pid}/fd`).map((f) => {
    try {
      return `${f}:${readlinkSync(`/proc/${d.child.pid}/fd/${f}`)}`
    } catch {
      return `${f}:gone` // closed between the listing and the look
    }
  })

type Held = { a: string[]; b: string[] }
const newSince = (before: Held, pair: DaemonPair): Held => ({
  a: descriptors(pair.a).filter((x) => !before.a.includes(x)),
  b: descriptors(pair.b).filter((x) => !before.b.includes(x)),
})

/** After a storm: nothing left open anywhere, and a large exchange is whole. */
async function nothingLeft(
  pair: DaemonPair,
  target: ChaosTarget,
  before: Held,
  dial: Dial,
  restartedA = false,
): Promise<void> {
  const a = await pair.a.client()
  const b = await pair.b.client()
  try {
    await eventually(
      async () => {
        assert.deepEqual((await a.status()).streams.incoming.active, 0, 'service streams open at the serving end')
        return true
      },
      { timeoutMs: 15_000, message: 'no service stream open at the serving end' },
    )
    await eventually(
      async () => {
        const st = await b.status()
        const open = { streams: st.streams.active, forwarded: st.forwards.map((f) => f.active) }
        assert.deepEqual(open, { streams: 0, forwarded: st.forwards.map(() => 0) }, 'open at the client end')
        return true
      },
      { timeoutMs: 15_000, message: 'no service stream or forwarded connection open at the client end' },
    )
    await eventually(
      () => {
        assert.deepEqual(target.open(), {}, 'connections open to the service, by mode')
        return true
      },
      { timeoutMs: 15_000, message: 'no connection open to the service' },
    )
  } finally {
    a.close()
    b.close()
  }
  // the API connections above closed too: every descriptor left is one the daemon held before the storm (a
  // restarted `a` is a new process, and `b` then holds a new connection to it in place of the old one)
  await eventually(
    () => {
      if (restartedA) assert.ok(descriptors(pair.b).length <= before.b.length, `b holds ${descriptors(pair.b)}`)
      else assert.deepEqual(newSince(before, pair), { a: [], b: [] }, 'descriptors opened since, in each daemon')
      return true
    },
    { timeoutMs: 15_000, message: 'no descriptor beyond those the daemons held before' },
  )
  assert.equal(await echoExchange(dial, 16 * MiB, 9), undefined)
}

function useChaos(): { pair(): DaemonPair; target(): ChaosTarget } {
  let pair: DaemonPair | undefined
  let target: ChaosTarget | undefined
  before(async () => {
    target = await chaosTarget()
    pair = await startDaemonPair({ chaos: `/tcp/${target.port}` })
  })
  after(async () => {
    await pair?.close()
    await target?.close()
  })
  return { pair: () => pair!, target: () => target! }
}

async function run(pair: DaemonPair, target: ChaosTarget, dial: Dial, restartA = false): Promise<void> {
  // a first exchange opens the peer connection and everything a daemon keeps for good
  assert.equal(await echoExchange(dial, 64 * KiB, 3), undefined)
  await sleep(500)
  const before: Held = { a: descriptors(pair.a), b: descriptors(pair.b) }
  const seed = seedOf()
  const restart = restartA ? async () => void (await pair.restartA()) : undefined
  const { problems, mix, excused } = await storm(dial, seed, restart)
  assert.deepEqual(problems, [], `seed ${seed}, mix ${JSON.stringify(mix)}`)
  // the restart cut exchanges under way (each ended with an error at the client): otherwise it tested nothing
  if (restartA) assert.ok(excused > 0, 'some exchanges were under way when the serving daemon was killed')
  await nothingLeft(pair, target, before, dial, restartA)
}

describe('a storm of connections ending every way, through a forward', () => {
  const c = useChaos()
  it(`${CONNECTIONS} connections, ${AT_ONCE} at a time: every exchange whole or failed loudly, nothing left over`, async () => {
    const [listen] = [...(await forwardEach(c.pair(), ['chaos'], { check: false })).values()]
    await run(c.pair(), c.target(), async () => dialForward(listen!))
  })
})

describe('a storm of connections ending every way, through SOCKS5 on the access port', () => {
  const c = useChaos()
  it(`${CONNECTIONS} connections, ${AT_ONCE} at a time: every exchange whole or failed loudly, nothing left over`, async () => {
    const dial = async (): Promise<Socket> => {
      const r = await socks5Connect(c.pair().fast, { host: 'chaos.a.warren', port: 80 })
      if (r.reply !== 0) throw new Error(`SOCKS5 reply ${r.reply}`)
      return r.socket
    }
    await run(c.pair(), c.target(), dial)
  })
})

describe('a storm of connections through a forward while the serving daemon is killed and started again', () => {
  const c = useChaos()
  it(`${CONNECTIONS} connections, ${AT_ONCE} at a time: every exchange whole or failed loudly, nothing left over`, async () => {
    const [listen] = [...(await forwardEach(c.pair(), ['chaos'], { check: false })).values()]
    await run(c.pair(), c.target(), async () => dialForward(listen!), true)
  })
})
