/**
 * `warren connect` never exits 0 on a cut stream: whole transfers through slow and bursty pipes exit 0 with every
 * byte, and a stream cut anywhere (the service resets, the far daemon is killed, stdout breaks, the client is
 * killed) ends with an error on both sides — exit 5 and a message naming the cause, a reset at the service.
 * Real daemons, real CLI processes, real TCP services; every transfer is checked by SHA-256.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { WarrenClient } from '../../src/client/client.ts'
import { isWarrenError } from '../../src/errors.ts'
import { spawnCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import {
  ByteSource,
  MiB,
  pace,
  pacedHashServer,
  pump,
  type ReadPace,
  type ReadResult,
  readPaced,
  sourceServer,
} from '../support/transfer.ts'

type Server = { port: number; close(): Promise<void> }

/** How one connection to a {@link resettableSource} ended for the service: 'sent' (every byte and a FIN) or the error. */
type SourceEnd = 'sent' | string

/**
 * A TCP service sending `size` bytes of ByteSource per connection; `reset()` kills it the abortive way (RST on
 * every open connection), as a crashing service looks on the wire. Each connection's end goes to `ends`.
 */
async function resettableSource(size: number): Promise<Server & { reset(): void; ends: Promise<SourceEnd>[] }> {
  const sockets = new Set<Socket>()
  const ends: Promise<SourceEnd>[] = []
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.resume()
    ends.push(
      new Promise<SourceEnd>((resolve) => {
        s.on('error', (err) => resolve(err.message))
        s.on('close', () => {
          sockets.delete(s)
          resolve('closed')
        })
        void pump(new ByteSource(size), s).then(
          () => resolve('sent'),
          (err: Error) => resolve(err.message),
        )
      }),
    )
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    ends,
    reset() {
      for (const s of sockets) s.resetAndDestroy()
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

let pair: DaemonPair
let src: Server
let cut: Awaited<ReturnType<typeof resettableSource>>
let sink: Server
const sinkResults: ReadResult[] = []
let sinkWaiters: (() => void)[] = []

const DOWNLOAD = 64 * MiB
const UPLOAD = 32 * MiB

before(async () => {
  src = await sourceServer(DOWNLOAD)
  cut = await resettableSource(DOWNLOAD)
  sink = await pacedHashServer(pace.mibps(10), (r) => {
    sinkResults.push(r)
    for (const w of sinkWaiters) w()
    sinkWaiters = []
  })
  pair = await startDaemonPair({ src: `/tcp/${src.port}`, cut: `/tcp/${cut.port}`, sink: `/tcp/${sink.port}` })
})

after(async () => {
  await pair?.close()
  await Promise.all([src?.close(), cut?.close(), sink?.close()])
})

/** The next result the sink reports. */
function nextSinkResult(): Promise<ReadResult> {
  const seen = sinkResults.length
  return new Promise((resolve) => {
    const check = (): void => {
      if (sinkResults.length > seen) resolve(sinkResults[seen]!)
      else sinkWaiters.push(check)
    }
    check()
  })
}

interface Run {
  child: ChildProcess
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>
}

/** `warren connect <ref>` from b's home, killed after 60 s so that a hang fails the test instead of the suite. */
function connect(ref: string): Run {
  const child = spawnCli(['connect', ref], { home: pair.bHome.dir })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  child.stdin!.on('error', () => {})
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stderr })
    }),
  )
  return { child, exit }
}

/** Downloads `src` through `warren connect`, reading its stdout at `p`; the request goes first, then EOF. */
async function download(p: ReadPace): Promise<void> {
  const run = connect('a/src')
  run.child.stdin!.end('GET everything\n') // half-closed: the service still sends its whole answer
  const read = await readPaced(run.child.stdout!, p)
  const exit = await run.exit
  assert.deepEqual({ code: exit.code, stderr: exit.stderr }, { code: 0, stderr: '' })
  assert.deepEqual(read, { bytes: DOWNLOAD, sha256: ByteSource.digest(DOWNLOAD), ending: 'end' })
}

test('64 MiB through `warren connect` into a pipe read at 10 MiB/s: every byte, exit 0', async () => {
  await download(pace.mibps(10))
})

test('64 MiB through `warren connect` into a pipe read in bursts: every byte, exit 0', async () => {
  await download(pace.bursts())
})

test('32 MiB uploaded through `warren connect` into a service reading at 10 MiB/s: the answer has the right sha256, exit 0', async () => {
  const run = connect('a/sink')
  const result = nextSinkResult()
  const out = readPaced(run.child.stdout!, pace.fast)
  const stdout: Buffer[] = []
  run.child.stdout!.on('data', (d: Buffer) => stdout.push(d))
  await pump(new ByteSource(UPLOAD), run.child.stdin!) // then EOF: the sink sees a clean end and answers
  const exit = await run.exit
  assert.deepEqual({ code: exit.code, stderr: exit.stderr }, { code: 0, stderr: '' })
  const answer = `${UPLOAD} ${ByteSource.digest(UPLOAD)}`
  assert.equal(Buffer.concat(stdout).toString(), answer)
  assert.equal((await out).ending, 'end')
  assert.deepEqual(await result, { bytes: UPLOAD, sha256: ByteSource.digest(UPLOAD), ending: 'end' })
})

/** Waits until the reader has had at least `bytes`; fails if the command exits first. */
function afterBytes(read: { bytes: number }, bytes: number, run: Run): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (read.bytes >= bytes) {
        clearInterval(t)
        resolve()
      }
    }, 10)
    void run.exit.then((e) => {
      clearInterval(t)
      if (read.bytes < bytes) reject(new Error(`exited (${e.code}) after ${read.bytes} bytes:\n${e.stderr}`))
    })
  })
}

/** Reads a child's stdout at `p`, hashing it, with a live byte count. */
function countedRead(child: ChildProcess, p: ReadPace): { bytes: number; done: Promise<ReadResult> } {
  const counter = { bytes: 0, done: undefined as unknown as Promise<ReadResult> }
  child.stdout!.on('data', (d: Buffer) => {
    counter.bytes += d.length
  })
  counter.done = readPaced(child.stdout!, p)
  return counter
}

test('the service reset mid-download: `warren connect` exits 5 naming the cause, with an intact prefix only', async () => {
  const run = connect('a/cut')
  run.child.stdin!.end()
  const read = countedRead(run.child, pace.mibps(20))
  await afterBytes(read, 4 * MiB, run)
  cut.reset()
  const [exit, got] = await Promise.all([run.exit, read.done])
  assert.equal(exit.code, 5, exit.stderr)
  assert.equal(
    exit.stderr,
    'warren: the stream to a/cut was cut: the far side reset the stream\n' +
      'hint: Run it again; if it keeps failing, the log of either daemon names the cause.\n',
  )
  assert.ok(got.bytes >= 4 * MiB && got.bytes < DOWNLOAD, `${got.bytes} bytes`)
  assert.equal(got.sha256, ByteSource.digest(got.bytes), 'what arrived is the start of the data, intact')
})

test('the library stream: a service reset mid-transfer is an error event with ERR_STREAM_ABORTED, never an end', async () => {
  const client = await WarrenClient.connect({ home: pair.bHome.dir })
  try {
    const stream = await client.openStream('a', 'cut')
    stream.end()
    let bytes = 0
    const ended = new Promise<unknown>((resolve) => {
      stream.on('data', (d: Buffer) => {
        bytes += d.length
        if (bytes >= MiB && bytes - d.length < MiB) cut.reset()
      })
      stream.once('end', () => resolve('end'))
      stream.once('error', resolve)
    })
    const err = await ended
    assert.ok(isWarrenError(err, 'ERR_STREAM_ABORTED'), String(err))
    assert.equal(err.message, 'the stream to a/cut was cut: the far side reset the stream')
    assert.equal(err.exitCode, 5)
    assert.ok(bytes < DOWNLOAD, `${bytes} bytes`)
  } finally {
    client.close()
  }
})

test('stdout closed by its reader mid-download (EPIPE): exit 5 with the cause, and the service gets a reset', async () => {
  const ends = cut.ends.length
  const run = connect('a/cut')
  run.child.stdin!.end()
  const read = countedRead(run.child, pace.fast)
  await afterBytes(read, 2 * MiB, run)
  run.child.stdout!.destroy() // like `| head -c 2M`: the next write to stdout fails with EPIPE
  const exit = await run.exit
  assert.equal(exit.code, 5, exit.stderr)
  assert.match(exit.stderr, /^warren: cannot write the output of a\/cut: write EPIPE\nhint: /)
  await eventually(() => cut.ends.length > ends, { message: 'the cut server saw the connection end' })
  const serviceEnd = await cut.ends[ends]!
  assert.notEqual(serviceEnd, 'sent', 'the service must not see its data as delivered')
  assert.match(serviceEnd, /ECONNRESET|EPIPE/)
})

test('the client killed mid-upload: the service sees a reset, not a clean end', async () => {
  const run = connect('a/sink')
  const result = nextSinkResult()
  run.child.stdout!.resume()
  const src = new ByteSource(UPLOAD)
  let written = 0
  const killed = new Promise<void>((resolve, reject) => {
    const go = (): void => {
      for (let c = src.next(); c !== null; c = src.next()) {
        written += c.length
        if (written >= 8 * MiB) {
          run.child.kill('SIGKILL')
          resolve()
          return
        }
        if (!run.child.stdin!.write(c)) {
          run.child.stdin!.once('drain', go)
          return
        }
      }
      reject(new Error('the whole upload was written before the kill'))
    }
    go()
  })
  await killed
  const exit = await run.exit
  assert.equal(exit.signal, 'SIGKILL')
  const r = await result
  assert.notEqual(r.ending, 'end', `the service saw a clean end after ${r.bytes} bytes`)
  assert.ok(r.bytes < UPLOAD, `${r.bytes} bytes`)
  await pair.b.waitForLog(
    /warn {2}warren connect to a\/sink: \d+ bytes in, \d+ out, \d+ ms, ended abnormally: the client went away before the stream ended(: [^\n]+)?\n/,
  )
})

// last: it kills daemon a
test('daemon a killed (SIGKILL) mid-download: `warren connect` exits 5 with a message', async () => {
  const run = connect('a/src')
  run.child.stdin!.end()
  const read = countedRead(run.child, pace.mibps(10))
  await afterBytes(read, 4 * MiB, run)
  await pair.a.stop('SIGKILL')
  const [exit, got] = await Promise.all([run.exit, read.done])
  assert.equal(exit.code, 5, exit.stderr)
  assert.match(exit.stderr, /^warren: the stream to a\/src was cut: .+\nhint: /)
  assert.ok(got.bytes < DOWNLOAD, `${got.bytes} bytes`)
  assert.equal(got.sha256, ByteSource.digest(got.bytes), 'what arrived is the start of the data, intact')
})
