/**
 * A daemon at its open-file limit (started under `prlimit --nofile=260:260`, real processes): 400 client
 * connections at once through a forward. Those that fit under the limit (less the 128 descriptors a daemon keeps
 * for itself and its peer connections) echo every byte; every other one is reset at once, none hangs or ends
 * cleanly, the refusal is logged once with ERR_FILE_LIMIT (forwarding end) or answered OVERLOADED (serving end),
 * and the daemon stays up and serves new connections once the others closed. Before the budget, the forwarding end
 * accepted and closed the connections past the limit without a word, and died when libp2p then listed the network
 * interfaces (EMFILE in a timer).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadNodeKey } from '../../src/identity/keys.ts'
import type { NodeStatus } from '../../src/node/types.ts'
import { DESCRIPTOR_RESERVE } from '../../src/open-files.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, type TestServer } from '../support/servers.ts'

const LIMIT = 260
const CLIENTS = 400
const UNDER_LIMIT = ['prlimit', `--nofile=${LIMIT}:${LIMIT}`]

interface Outcome {
  socket: Socket
  /** 'echoed', or the error code / 'closed' / 'hung' with the bytes that came back before it. */
  end: string
  sent: Buffer
  got: Buffer
}

/** One client: 8 random bytes, then the echo, a reset, a close or 15 s of nothing. */
function client(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const sent = randomBytes(8)
    const socket = connect({ host: '127.0.0.1', port })
    let got = Buffer.alloc(0)
    const done = (end: string): void => {
      clearTimeout(timer)
      socket.removeAllListeners('data')
      resolve({ socket, end, sent, got })
    }
    const timer = setTimeout(() => done('hung'), 15_000)
    socket.on('connect', () => socket.write(sent))
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length >= sent.length) done('echoed')
    })
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message))
    socket.on('close', () => done('closed'))
  })
}

const sha = (bufs: Buffer[]): string => createHash('sha256').update(Buffer.concat(bufs)).digest('hex')

/** The tally of ends, and every echo checked byte for byte (sha256 of all sent against all received). */
function tally(outcomes: Outcome[]): { echoed: number; reset: number; other: string[] } {
  const echoed = outcomes.filter((o) => o.end === 'echoed')
  assert.equal(
    sha(echoed.map((o) => o.got)),
    sha(echoed.map((o) => o.sent)),
    'every echoed connection got its own bytes back',
  )
  const reset = outcomes.filter((o) => o.end === 'ECONNRESET')
  for (const o of reset) assert.equal(o.got.length, 0, 'a reset connection carried nothing')
  const other = outcomes.filter((o) => o.end !== 'echoed' && o.end !== 'ECONNRESET').map((o) => o.end)
  return { echoed: echoed.length, reset: reset.length, other }
}

/** Closes the burst's connections; the descriptors come back, and a new burst under the limit echoes whole. */
async function closeAndRetry(outcomes: Outcome[], p: Pair): Promise<void> {
  for (const o of outcomes) o.socket.destroy()
  const streams = async (d: TestDaemon): Promise<number> => {
    const c = await d.client()
    try {
      return (await c.status()).streams.active
    } finally {
      c.close()
    }
  }
  await eventually(async () => (await streams(p.a)) + (await streams(p.b)) === 0, {
    message: 'every stream of the burst ended on both ends',
  })
  const again = tally(await Promise.all(Array.from({ length: 50 }, () => client(p.port))))
  assert.deepEqual(again, { echoed: 50, reset: 0, other: [] })
}

/** A connection to `addr` that sends nothing: closed by the far end within 1 s, or held open. */
function heldOpen(addr: { host: string; port: number }): Promise<{ socket: Socket; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(addr)
    const timer = setTimeout(() => resolve({ socket, closed: false }), 1_000)
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ socket, closed: true })
    })
  })
}

async function accessPort(d: TestDaemon): Promise<{ host: string; port: number }> {
  const c = await d.client()
  try {
    const listen = (await c.status()).access!.listen
    const i = listen.lastIndexOf(':')
    return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) }
  } finally {
    c.close()
  }
}

interface Pair {
  a: TestDaemon
  b: TestDaemon
  port: number
  close(): Promise<void>
}

/** A serves `echo` to B, B forwards it; `limited` runs under the open-file limit. */
async function pair(echo: TestServer, limited: 'a' | 'b'): Promise<Pair> {
  const bHome = await makeHome()
  const bId = peerIdFromPrivateKey(await loadNodeKey(bHome.key)).toString()
  const aHome = await makeHome(testConfig({ services: { echo: `/tcp/${echo.port}` }, peers: { b: bId } }))
  const a = await TestDaemon.start(aHome, [], 20_000, limited === 'a' ? UNDER_LIMIT : undefined)
  const aIdent = await a.identity()
  await writeConfig(bHome, testConfig({ peers: { a: aIdent.ticket } }))
  const b = await TestDaemon.start(bHome, [], 20_000, limited === 'b' ? UNDER_LIMIT : undefined)
  const c = await b.client()
  try {
    const fwd = await c.forwardAdd({ node: 'a', service: 'echo', listen: '127.0.0.1:0' })
    const port = Number(fwd.listen.split(':').pop())
    return {
      a,
      b,
      port,
      close: async () => {
        await Promise.all([a.stop(), b.stop()])
        await Promise.all([removeHome(aHome), removeHome(bHome)])
      },
    }
  } finally {
    c.close()
  }
}

async function statusOf(d: TestDaemon): Promise<NodeStatus> {
  const c = await d.client()
  try {
    return await c.status()
  } finally {
    c.close()
  }
}

async function forwardInfo(b: TestDaemon): Promise<{ failed: number; lastError?: { code: string; message: string } }> {
  const c = await b.client()
  try {
    return (await c.forwards())[0]!
  } finally {
    c.close()
  }
}

describe('a daemon at its open-file limit', { skip: process.platform !== 'linux' }, () => {
  const servers: TestServer[] = []
  after(async () => {
    for (const s of servers) await s.close()
  })

  it('forwarding end: connections past the limit are reset at once with ERR_FILE_LIMIT, and it stays up', async () => {
    const echo = await echoServer()
    servers.push(echo)
    const p = await pair(echo, 'b')
    try {
      assert.match(
        p.b.stderr,
        new RegExp(
          `warn {2}limits\\.maxStreams is 4096 but this process may open only ${LIMIT} files \\(ulimit -n\\): ` +
            `local connections past about ${LIMIT - DESCRIPTOR_RESERVE} will be refused; raise the limit to at least ` +
            `${4096 + DESCRIPTOR_RESERVE} \\(ulimit -n, or LimitNOFILE= in a systemd unit\\)`,
        ),
      )
      const outcomes = await Promise.all(Array.from({ length: CLIENTS }, () => client(p.port)))
      const t = tally(outcomes)
      assert.deepEqual(t.other, [], 'every connection either echoed or was reset')
      assert.equal(t.echoed + t.reset, CLIENTS)
      // the budget: the limit less the reserve less B's peer connection(s)
      assert.ok(t.echoed <= LIMIT - DESCRIPTOR_RESERVE && t.echoed >= LIMIT - DESCRIPTOR_RESERVE - 4, `${t.echoed}`)
      assert.ok(t.reset > 0)
      const info = await forwardInfo(p.b)
      assert.equal(info.failed, t.reset)
      assert.equal(info.lastError?.code, 'ERR_FILE_LIMIT')
      assert.deepEqual((await statusOf(p.b)).openFiles, { limit: LIMIT, localConnections: t.echoed, refused: t.reset })
      const text = await runCli(['status'], { home: p.b.home.dir })
      assert.equal(text.code, 0, text.stderr)
      assert.match(
        text.stdout,
        new RegExp(
          `^open files +${t.echoed} local connections, limit ${LIMIT} \\(ulimit -n\\), ${t.reset} refused at the limit \\(ERR_FILE_LIMIT\\)$`,
          'm',
        ),
      )
      assert.match(
        info.lastError!.message,
        new RegExp(
          `^refused a client connection: ${t.echoed} local connections are open, the most this process's open-file ` +
            `limit allows \\(ulimit -n ${LIMIT}, less ${DESCRIPTOR_RESERVE} kept for the node's own use and those of ` +
            'its peer connections\\); raise the limit \\(ulimit -n, LimitNOFILE= in a systemd unit\\) or close connections$',
        ),
      )
      // `warren connect` is a local connection too: refused with the code, while `warren status` above still answered
      const connected = await runCli(['connect', 'a/echo'], { home: p.b.home.dir, input: 'hello' })
      assert.equal(connected.code, 6, connected.stderr)
      assert.equal(connected.stdout, '')
      assert.equal(
        connected.stderr,
        `warren: the daemon refused a stream: ${t.echoed} local connections are open, the most this process's ` +
          `open-file limit allows (ulimit -n ${LIMIT}, less ${DESCRIPTOR_RESERVE} kept for the node's own use and ` +
          'those of its peer connections); raise the limit (ulimit -n, LimitNOFILE= in a systemd unit) or close ' +
          'connections\n',
      )
      const lines = p.b.stderr.split('\n').filter((l) => l.includes('forward') && l.includes('ERR_FILE_LIMIT'))
      assert.equal(lines.length, 1, 'one line, the rest counted')
      assert.match(
        lines[0]!,
        / warn {2}forward 127\.0\.0\.1:\d+ → a\/echo: ERR_FILE_LIMIT: refused a client connection/,
      )
      await closeAndRetry(outcomes, p)

      // the access port draws on the same budget: past it a connection is closed at once, before anything is read
      const access = await accessPort(p.b)
      const held = await Promise.all(Array.from({ length: CLIENTS }, () => heldOpen(access)))
      const closed = held.filter((h) => h.closed).length
      assert.ok(closed > 0 && CLIENTS - closed <= LIMIT - DESCRIPTOR_RESERVE, `${closed} closed`)
      const refusals = p.b.stderr.split('\n').filter((l) => l.includes('the access port refused'))
      assert.equal(refusals.length, 1, refusals.join('\n'))
      assert.match(
        refusals[0]!,
        / warn {2}the access port refused a connection: ERR_FILE_LIMIT: \d+ local connections are open, the most /,
      )
      for (const h of held) h.socket.destroy()
      await eventually(
        async () =>
          (await Promise.all(Array.from({ length: 20 }, () => heldOpen(access)))).every((h) => {
            h.socket.destroy()
            return !h.closed
          }),
        { message: 'the access port admits connections again' },
      )
      assert.equal(p.b.child.exitCode, null, 'B is still running')
    } finally {
      await p.close()
    }
  })

  it('serving end: streams past its limit are answered OVERLOADED, the client reset, and it stays up', async () => {
    const echo = await echoServer()
    servers.push(echo)
    const p = await pair(echo, 'a')
    try {
      const outcomes = await Promise.all(Array.from({ length: CLIENTS }, () => client(p.port)))
      const t = tally(outcomes)
      assert.deepEqual(t.other, [])
      assert.equal(t.echoed + t.reset, CLIENTS)
      assert.ok(t.echoed <= LIMIT - DESCRIPTOR_RESERVE && t.echoed >= LIMIT - DESCRIPTOR_RESERVE - 4, `${t.echoed}`)
      const info = await forwardInfo(p.b)
      assert.equal(info.failed, t.reset)
      assert.equal(info.lastError?.code, 'ERR_OVERLOADED')
      assert.deepEqual((await statusOf(p.a)).openFiles, { limit: LIMIT, localConnections: t.echoed, refused: t.reset })
      assert.match(info.lastError!.message, /this node is at its open-file limit: \d+ local connections are open/)
      const lines = p.a.stderr.split('\n').filter((l) => l.includes('open-file limit'))
      assert.equal(lines.length, 1, `one line on A, the rest counted:\n${lines.join('\n')}`)
      assert.match(lines[0]!, / warn {2}incoming stream refused: \S+ → echo: this node is at its open-file limit: /)
      await closeAndRetry(outcomes, p)
      assert.equal(p.a.child.exitCode, null, 'A is still running')
    } finally {
      await p.close()
    }
  })
})
