/**
 * Revocation: unexposing a service, or replacing it with an allow list that no longer names a peer, resets the
 * streams the new rules do not admit — the client sees a reset, not a clean end, and the target connection is
 * closed — while streams still admitted go on to their last byte. Three real daemons: `a` offers `big`, `b` and
 * `c` use it through forwards; the rules change through `warren unexpose` and the API's `services.add` with replace.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { HomePaths } from '../../src/config/home.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { ByteSource, MiB, pump } from '../support/transfer.ts'

const SIZE = 48 * MiB

/** A TCP server sending SIZE bytes of ByteSource to each connection; it records how each connection ended. */
async function trackedSource(): Promise<{
  port: number
  ends: Promise<string>[]
  /** Target connections open now. */
  open(): number
  close(): Promise<void>
}> {
  const ends: Promise<string>[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.resume()
    let error = ''
    s.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message
    })
    ends.push(new Promise((resolve) => s.once('close', () => resolve(error === '' ? 'closed' : `closed: ${error}`))))
    s.once('close', () => sockets.delete(s))
    void pump(new ByteSource(SIZE), s).catch(() => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    ends,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

interface Reader {
  /** Resolves once `min` bytes arrived; the reader is paused then. */
  started: Promise<void>
  resume(): void
  /** Bytes, SHA-256 and how the connection ended ('end' or the error code). */
  result: Promise<{ bytes: number; sha256: string; ending: string }>
}

/** Connects to a forward and reads; pauses after `min` bytes so that the transfer is in the middle. */
function readFrom(listen: string, min = MiB): Reader {
  const i = listen.lastIndexOf(':')
  const s = connect({ host: listen.slice(0, i), port: Number(listen.slice(i + 1)), allowHalfOpen: true })
  const h = createHash('sha256')
  let bytes = 0
  let onStarted: (() => void) | undefined
  const started = new Promise<void>((r) => {
    onStarted = r
  })
  s.on('data', (c: Buffer) => {
    h.update(c)
    bytes += c.length
    if (bytes >= min && onStarted !== undefined) {
      s.pause()
      onStarted()
      onStarted = undefined
    }
  })
  const result = new Promise<{ bytes: number; sha256: string; ending: string }>((resolve) => {
    let ending = ''
    s.once('end', () => {
      ending = 'end'
      s.end()
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      ending = err.code ?? err.message
    })
    s.once('close', () => resolve({ bytes, sha256: h.digest('hex'), ending: ending || 'closed without end' }))
  })
  return { started, resume: () => s.resume(), result }
}

async function nodeId(home: HomePaths): Promise<string> {
  return peerIdFromPrivateKey(await loadNodeKey(home.key)).toString()
}

describe('revocation: removed services and peers lose their open streams', { timeout: 120_000 }, () => {
  let source: Awaited<ReturnType<typeof trackedSource>>
  const homes: HomePaths[] = []
  let a: TestDaemon
  let b: TestDaemon
  let c: TestDaemon
  let bId: string
  let target: string

  before(async () => {
    source = await trackedSource()
    target = `/tcp/${source.port}`
    const [bHome, cHome] = [await makeHome(), await makeHome()]
    bId = await nodeId(bHome)
    const aHome = await makeHome(
      testConfig({
        peers: { b: bId, c: await nodeId(cHome) },
        services: { big: { target, allow: ['b', 'c'] } },
      }),
    )
    homes.push(aHome, bHome, cHome)
    a = await TestDaemon.start(aHome)
    const ticket = (await a.identity()).ticket
    for (const h of [bHome, cHome]) await writeConfig(h, testConfig({ peers: { a: ticket } }))
    ;[b, c] = await Promise.all([TestDaemon.start(bHome), TestDaemon.start(cHome)])
  })

  after(async () => {
    await Promise.all([a, b, c].map((d) => d?.stop()))
    await Promise.all(homes.map((h) => removeHome(h)))
    await source?.close()
  })

  const forward = async (d: TestDaemon): Promise<string> => {
    const client = await d.client()
    try {
      // no check stream: it would make a target connection of its own
      return (await client.forwardAdd({ node: 'a', service: 'big', listen: '127.0.0.1:0', check: false })).listen
    } finally {
      client.close()
    }
  }

  it('`warren unexpose` resets a running transfer: the client sees a reset, the target connection is closed', async () => {
    const reader = readFrom(await forward(b))
    await reader.started
    assert.equal(source.open(), 1)
    const targetEnd = source.ends.at(-1)!

    const un = await runCli(['unexpose', 'big'], { home: a.home.dir })
    assert.equal(un.code, 0, un.stderr)
    reader.resume()
    const r = await reader.result
    assert.equal(r.ending, 'ECONNRESET', 'a revoked stream ends with a reset, never a clean end')
    assert.ok(r.bytes < SIZE, `only part of the ${SIZE} bytes arrived (${r.bytes})`)
    assert.match(await targetEnd, /^closed/)
    await a.waitForLog(
      new RegExp(
        `warn {2}access revoked: reset the stream of ${bId} to "big": service "big" is no longer exposed$`,
        'm',
      ),
    )
  })

  it('`services.add` with replace drops a peer from allow: its stream is reset, the other peer gets every byte', async () => {
    const api = await a.client()
    try {
      await api.expose('big', target, { allow: ['b', 'c'] })
      const dropped = readFrom(await forward(b))
      const kept = readFrom(await forward(c))
      await Promise.all([dropped.started, kept.started])

      await api.expose('big', target, { allow: ['c'], replace: true })
      dropped.resume()
      kept.resume()
      const [d, k] = await Promise.all([dropped.result, kept.result])

      assert.equal(d.ending, 'ECONNRESET')
      assert.ok(d.bytes < SIZE)
      assert.deepEqual(k, { bytes: SIZE, sha256: ByteSource.digest(SIZE), ending: 'end' })
      await a.waitForLog(
        new RegExp(
          `warn {2}access revoked: reset the stream of ${bId} to "big": node ${bId} is no longer allowed to use "big"$`,
          'm',
        ),
      )
      // both target connections are closed: the revoked one by the reset, the other after its last byte
      await eventually(() => source.open() === 0, { timeoutMs: 20_000, message: 'every source connection closed' })
    } finally {
      api.close()
    }
  })
})
