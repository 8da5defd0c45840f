/**
 * `warren forward` checks the service before adding a forward, with two real daemons on loopback: a refusal fails
 * the command with the exact error and exit status and leaves no forward or listener; an unreachable node gets the
 * forward and a warning; `--no-check` skips the check; a refusal met later by a client connection shows in
 * `warren forward --list` and `warren status` as the forward's last error with its failed count; a restored forward
 * is checked again at daemon start.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import type { ForwardInfo } from '../../src/node/types.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig } from '../support/daemon.ts'
import { type DaemonPair as Pair, startDaemonPair as startPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, freePort, hashServer, stalledServer, type TestServer } from '../support/servers.ts'
import { ByteSource, MiB, pump, sourceServer } from '../support/transfer.ts'

const OTHER_ID = '12D3KooWFhA6TC6wNfyaBVo4W9QLBwX77k7Jkuwokh3LiMBUqnRz' // a valid id nobody here has
const portOf = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1))

interface Ended {
  bytes: Buffer
  /** The client socket's error, when it ended by one (a reset) instead of a clean end. */
  error?: NodeJS.ErrnoException
}

/** Connects to `listen`, sends `size` bytes of a ByteSource and half-closes; resolves with the answer and how it ended. */
function transfer(listen: string, size: number): Promise<Ended> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: portOf(listen), allowHalfOpen: true })
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', (error: NodeJS.ErrnoException) => resolve({ bytes: Buffer.concat(chunks), error }))
    s.on('end', () => {
      s.end()
      resolve({ bytes: Buffer.concat(chunks) })
    })
    s.once('connect', () => void pump(new ByteSource(size), s).catch(() => {}))
  })
}

/** The client connection ended by a reset (on read: ECONNRESET; while still writing: EPIPE), not a clean end. */
function assertReset(ended: Ended): void {
  assert.ok(ended.error !== undefined, 'the connection ended cleanly instead of by a reset')
  assert.ok(['ECONNRESET', 'EPIPE'].includes(ended.error.code ?? ''), `ended by ${ended.error.code}`)
}

/** Resolves with the connect error on `port` (ECONNREFUSED once nothing listens), or undefined when it connects. */
function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(undefined)
    })
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code))
  })
}

describe('warren forward checks the service first', () => {
  let pair: Pair
  let hash: TestServer
  let counted: TestServer
  let deadPort: number
  let resetter: Server
  let source: { port: number; close(): Promise<void> }
  const b = (args: string[]) => runCli(args, { home: pair.bHome.dir })
  const a = (args: string[]) => runCli(args, { home: pair.aHome.dir })
  const list = async (): Promise<ForwardInfo[]> => JSON.parse((await b(['forward', '--list', '--json'])).stdout)
  /** The forwards in b's state.json (none before the daemon first writes it). */
  const saved = async (): Promise<unknown[]> => {
    const text = await readFile(pair.bHome.state, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '{ "forwards": [] }'
      throw err
    })
    return (JSON.parse(text) as { forwards: unknown[] }).forwards
  }

  before(async () => {
    hash = await hashServer()
    counted = await echoServer()
    deadPort = await freePort()
    // takes 64 KiB, then resets the connection: a stream that ends abnormally after it was opened
    resetter = createServer((sock) => {
      let got = 0
      sock.on('error', () => {})
      sock.on('data', (d: Buffer) => {
        got += d.length
        if (got >= 64 * 1024) sock.resetAndDestroy()
      })
    })
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r))
    source = await sourceServer(8 * MiB, 7) // sends 8 MiB to every connection, the check's too
    pair = await startPair({
      source: `/tcp/${source.port}`,
      reset: `/tcp/${(resetter.address() as { port: number }).port}`,
      hash: `/tcp/${hash.port}`,
      counted: `/tcp/${counted.port}`,
      priv: { target: `/tcp/${hash.port}`, allow: [OTHER_ID] },
      dead: { target: `/tcp/${deadPort}`, allow: ['*'] },
    })
  })

  after(async () => {
    await pair?.close()
    await hash?.close()
    await counted?.close()
    await new Promise((r) => resetter?.close(r))
    await source?.close()
  })

  it('an unknown service: the exact error, exit 5, no forward and no listener left', async () => {
    const port = await freePort()
    const r = await b(['forward', 'a/nope', '--listen', `127.0.0.1:${port}`])
    assert.equal(
      r.stderr,
      `warren: node ${pair.aId} has no service "nope"\nhint: Check the name; \`warren ls ${pair.aId}\` lists the services it lets this node use.\n`,
    )
    assert.equal(r.code, 5)
    assert.equal(r.stdout, '')
    assert.deepEqual(await list(), [])
    assert.equal(await connectError(port), 'ECONNREFUSED')
    assert.deepEqual(await saved(), [], 'nothing saved for the next start either')
    // the same port is free for a forward that works
    const ok = await b(['forward', 'a/hash', '--listen', `127.0.0.1:${port}`])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.stdout, `127.0.0.1:${port}\n`)
    assert.equal(
      ok.stderr,
      `forwarding 127.0.0.1:${port} → a/hash (remove with \`warren forward --remove 127.0.0.1:${port}\`)\n`,
    )
    assert.equal((await b(['forward', '--remove', `127.0.0.1:${port}`])).code, 0)
  })

  it('a service that does not allow this node: ERR_NOT_AUTHORIZED exactly, exit 5; the API call rejects the same', async () => {
    const r = await b(['forward', 'a/priv'])
    assert.equal(
      r.stderr,
      `warren: node ${pair.aId} does not allow this node to use "priv"\n` +
        `hint: Ask its owner to run \`warren allow priv ${pair.bId}\` or to send you a \`warren invite priv\` link.\n`,
    )
    assert.equal(r.code, 5)
    assert.equal(r.stdout, '')
    const json = await b(['forward', 'a/priv', '--json'])
    assert.equal(json.code, 5)
    assert.equal((JSON.parse(json.stderr) as { error: { code: string } }).error.code, 'ERR_NOT_AUTHORIZED')
    const client = await pair.b.client()
    try {
      await assert.rejects(client.forwardAdd({ node: 'a', service: 'priv', listen: '127.0.0.1:0' }), (err) => {
        assert.ok(isWarrenError(err, 'ERR_NOT_AUTHORIZED'))
        assert.equal(err.message, `node ${pair.aId} does not allow this node to use "priv"`)
        return true
      })
      // `check` must be a boolean
      const bad = { node: 'a', service: 'hash', listen: '127.0.0.1:0', check: 'no' } as unknown as { node: string }
      await assert.rejects(client.call('forward.add', bad as never), (err) => {
        assert.ok(isWarrenError(err, 'ERR_USAGE'))
        assert.equal(err.message, 'forward.add: params.check: Invalid input: expected boolean, received string')
        return true
      })
    } finally {
      client.close()
    }
    assert.deepEqual(await list(), [])
  })

  it('a node that cannot be reached now: the forward is added, a warning says why, exit 0', async () => {
    const addr = `/ip4/127.0.0.1/tcp/${deadPort}`
    const r = await b(['forward', `${OTHER_ID}/web`, '--addr', addr])
    assert.equal(r.code, 0, r.stderr)
    const listen = r.stdout.trim()
    assert.match(listen, /^127\.0\.0\.1:\d+$/)
    const [first, warning, ...rest] = r.stderr.split('\n')
    assert.equal(first, `forwarding ${listen} → ${OTHER_ID}/web (remove with \`warren forward --remove ${listen}\`)`)
    assert.match(
      warning!,
      new RegExp(
        `^warren: warning: could not check ${OTHER_ID}/web, the forward is kept and each connection tries again: ` +
          `could not connect to node ${OTHER_ID}: .*ECONNREFUSED.* \\(ERR_DIAL_FAILED\\)$`,
      ),
    )
    assert.deepEqual(rest, [''])
    const [f] = await list()
    assert.equal(f?.listen, listen)
    assert.equal(f?.check.state, 'failed')
    assert.equal(f?.check.error?.code, 'ERR_DIAL_FAILED')
    assert.equal(f?.failed, 0)
    // a client connection meets the same failure: it is reset, and the forward records it
    const ended = await transfer(listen, 1000)
    assertReset(ended)
    assert.equal(ended.bytes.length, 0)
    const [after] = await list()
    assert.deepEqual([after?.total, after?.failed, after?.lastError?.code], [1, 1, 'ERR_DIAL_FAILED'])
    assert.equal((await b(['forward', '--remove', listen])).code, 0)
  })

  it('a service whose target is down: the forward is added with the exact warning, exit 0', async () => {
    const r = await b(['forward', 'a/dead'])
    assert.equal(r.code, 0, r.stderr)
    const listen = r.stdout.trim()
    assert.equal(
      r.stderr,
      `forwarding ${listen} → a/dead (remove with \`warren forward --remove ${listen}\`)\n` +
        'warren: warning: could not check a/dead, the forward is kept and each connection tries again: ' +
        `node ${pair.aId} could not reach the target of "dead": connect to 127.0.0.1:${deadPort} failed: ECONNREFUSED ` +
        '(ERR_TARGET_UNREACHABLE)\n',
    )
    const [f] = await list()
    assert.deepEqual([f?.listen, f?.check.state, f?.check.error?.code], [listen, 'failed', 'ERR_TARGET_UNREACHABLE'])
    assert.equal((await b(['forward', '--remove', listen])).code, 0)
  })

  it('the check opens one connection to the target and closes it cleanly; --no-check opens none', async () => {
    const before = counted.accepted()
    const skipped = await b(['forward', 'a/counted', '--no-check', '--json'])
    assert.equal(skipped.code, 0, skipped.stderr)
    const s = JSON.parse(skipped.stdout) as ForwardInfo
    assert.deepEqual(s.check, { state: 'skipped' })
    assert.equal(counted.accepted(), before)

    const checked = await b(['forward', 'a/counted', '--json'])
    assert.equal(checked.code, 0, checked.stderr)
    const c = JSON.parse(checked.stdout) as ForwardInfo
    assert.equal(c.check.state, 'ok')
    assert.equal(typeof c.check.at, 'number')
    assert.equal(counted.accepted(), before + 1)
    // the check's connection ends with a FIN both ways, so the far daemon logs no abnormal end
    await eventually(() => counted.sockets.size === 0, {
      timeoutMs: 5_000,
      message: 'the check left its target connection open',
    })
    assert.doesNotMatch(pair.a.stderr, /service counted .*ended abnormally/)

    // --no-check skips a refusal too, and is kept for the next start
    const nope = await b(['forward', 'a/nope', '--no-check'])
    assert.equal(nope.code, 0, nope.stderr)
    assert.deepEqual(await saved(), [
      { node: 'a', service: 'counted', listen: s.listen, check: false },
      { node: 'a', service: 'counted', listen: c.listen },
      { node: 'a', service: 'nope', listen: nope.stdout.trim(), check: false },
    ])
    for (const l of [s.listen, c.listen, nope.stdout.trim()]) await b(['forward', '--remove', l])
  })

  it("a service that streams on connect: the check stops after a greeting's worth, a client gets every byte", async () => {
    const fwd = await b(['forward', 'a/source', '--json'])
    assert.equal(fwd.code, 0, fwd.stderr)
    const f = JSON.parse(fwd.stdout) as ForwardInfo
    assert.equal(f.check.state, 'ok')
    // the far daemon saw the check reset its stream well before the 8 MiB were through
    const ended = new RegExp(
      `incoming stream ended: ${pair.bId} → source, 0 bytes in, (\\d+) out, \\d+ ms, (reset|error) `,
    )
    await pair.a.waitForLog(ended, 10_000)
    const sent = Number(ended.exec(pair.a.stderr)?.[1])
    assert.ok(sent < 8 * MiB, `the check took ${sent} bytes`)
    console.log(`# the check of a service that streams on connect stopped after ${sent} bytes from the target`)
    const got = await transfer(f.listen, 0)
    assert.equal(got.error, undefined)
    assert.equal(got.bytes.length, 8 * MiB)
    assert.equal(createHash('sha256').update(got.bytes).digest('hex'), ByteSource.digest(8 * MiB, 7))
    const [after] = await list()
    assert.deepEqual([after?.total, after?.failed], [1, 0])
    await b(['forward', '--remove', f.listen])
  })

  it('a stream that ends abnormally: the client is reset, the forward keeps ERR_STREAM_ABORTED with the cause', async () => {
    const fwd = await b(['forward', 'a/reset'])
    assert.equal(fwd.code, 0, fwd.stderr)
    const listen = fwd.stdout.trim()
    const ended = await transfer(listen, 4 * MiB)
    assertReset(ended)
    assert.equal(ended.bytes.length, 0)
    const [f] = await list()
    assert.deepEqual([f?.total, f?.failed, f?.lastError?.code], [1, 1, 'ERR_STREAM_ABORTED'])
    assert.match(
      f?.lastError?.message ?? '',
      /^stream ended abnormally after 0 bytes in, \d+ out: the far side reset the stream$/,
    )
    await b(['forward', '--remove', listen])
  })

  it('a service removed after the forward was made: the client is reset, --list and status show the error', async () => {
    const exposed = await a(['expose', 'tmp', `/tcp/${hash.port}`])
    assert.equal(exposed.code, 0, exposed.stderr)
    const fwd = await b(['forward', 'a/tmp'])
    assert.equal(fwd.code, 0, fwd.stderr)
    const listen = fwd.stdout.trim()

    const size = 4 * MiB
    const good = await transfer(listen, size)
    assert.equal(good.error, undefined)
    assert.equal(good.bytes.toString(), `${size} ${ByteSource.digest(size)}`)

    assert.equal((await a(['unexpose', 'tmp'])).code, 0)
    const refused = await transfer(listen, size)
    assertReset(refused)
    assert.equal(refused.bytes.length, 0)
    assert.notEqual(
      createHash('sha256').update(refused.bytes).digest('hex'),
      ByteSource.digest(size),
      'nothing pretends to be the whole answer',
    )

    const [f] = await list()
    assert.equal(f?.listen, listen)
    assert.deepEqual([f?.total, f?.active, f?.failed], [2, 0, 1])
    assert.equal(f?.lastError?.code, 'ERR_UNKNOWN_SERVICE')
    assert.equal(f?.lastError?.message, `node ${pair.aId} has no service "tmp"`)
    assert.equal(typeof f?.lastError?.at, 'number')
    assert.equal(f?.check.state, 'ok')

    const text = await b(['forward', '--list'])
    const pad = ' '.repeat(listen.length + 4)
    assert.match(
      text.stdout,
      new RegExp(
        `^${listen} {2}→ a/tmp {2}0 open, 2 served, 1 failed\\n${pad}last error \\d+s ago: ` +
          `node ${pair.aId} has no service "tmp" \\(ERR_UNKNOWN_SERVICE\\)\\n$`,
      ),
    )
    const status = await b(['status'])
    assert.equal(status.code, 0, status.stderr)
    assert.match(
      status.stdout,
      new RegExp(
        `\\nforwards \\(1\\)\\n {2}${listen} {2}→ a/tmp {2}0 open, 2 served, 1 failed\\n {2}${pad}last error \\d+s ago: ` +
          `node ${pair.aId} has no service "tmp" \\(ERR_UNKNOWN_SERVICE\\)\\ntraffic in `,
      ),
    )
    const st = JSON.parse((await b(['status', '--json'])).stdout) as { forwards: ForwardInfo[] }
    assert.deepEqual(st.forwards, [f])

    // at the next start the forward comes back, checked in the background: the refusal shows, the forward stays
    const d = await pair.restartB()
    const { restored } = await eventually(
      async () => {
        const f = (await list())[0]
        return f?.check.state === 'running' ? undefined : { restored: f }
      },
      { timeoutMs: 5_000, message: 'the restored forward was checked' },
    )
    assert.equal(restored?.listen, listen)
    assert.equal(restored?.check.state, 'failed')
    assert.equal(restored?.check.error?.code, 'ERR_UNKNOWN_SERVICE')
    assert.match(d.stderr, new RegExp(`forward ${listen} → a/tmp: check failed: node ${pair.aId} has no service "tmp"`))
    const listed = await b(['forward', '--list'])
    assert.match(
      listed.stdout,
      new RegExp(
        `\\n${pad}check failed \\d+s ago: node ${pair.aId} has no service "tmp" \\(ERR_UNKNOWN_SERVICE\\)\\n$`,
      ),
    )
    await b(['forward', '--remove', listen])
  })
})

describe('warren forward gives up the check after 2 × limits.dialTimeoutMs + limits.connectTimeoutMs', () => {
  it('a node that accepts TCP but never answers: ERR_TIMEOUT in the warning, the forward is added, exit 0', async () => {
    const stalled = await stalledServer() // takes the TCP connection and never speaks: the dial cannot finish
    const home = await makeHome(testConfig({ limits: { dialTimeoutMs: 100, connectTimeoutMs: 100 } }))
    const c = await TestDaemon.start(home)
    try {
      const r = await runCli(['forward', `${OTHER_ID}/web`, '--addr', `/ip4/127.0.0.1/tcp/${stalled.port}`], {
        home: home.dir,
      })
      assert.equal(r.code, 0, r.stderr)
      const listen = r.stdout.trim()
      assert.equal(
        r.stderr,
        `forwarding ${listen} → ${OTHER_ID}/web (remove with \`warren forward --remove ${listen}\`)\n` +
          `warren: warning: could not check ${OTHER_ID}/web, the forward is kept and each connection tries again: ` +
          `no answer from ${OTHER_ID} for "web" within 300 ms (ERR_TIMEOUT)\n`,
      )
      assert.ok(stalled.accepted() > 0, 'the dial reached the stalled server')
    } finally {
      await c.stop()
      await removeHome(home)
      await stalled.close()
    }
  })
})
