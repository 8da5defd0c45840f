/**
 * Warren's connection monitor (src/p2p/conn-monitor.ts) on real libp2p nodes over TCP: it checks with Yamux PING
 * frames, so the far side runs no ping handler (js-libp2p's monitor, for comparison, opens a ping stream each time);
 * it aborts the connection of a peer that stopped answering (a child process under SIGSTOP); and `checkConnection`
 * falls back to a ping stream where the connection has no muxer ping.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { after, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { connMonitor } from '../../src/p2p/conn-monitor.ts'
import { checkConnection } from '../../src/p2p/conn-ping.ts'
import { PING_PROTOCOL } from '../../src/p2p/ping-answer.ts'
import { eventually } from '../support/eventually.ts'

const NODE = resolve('node_modules/.bin/node')
const BARE_PEER = resolve('test/relay/fixtures/bare-peer.ts')
const cleanups: (() => Promise<void> | void)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c()
})

type Monitor = ReturnType<ReturnType<typeof connMonitor>>

/** A node that listens on loopback and answers pings; `monitor` picks what checks its connections every 200 ms. */
async function node(monitor: 'warren' | 'libp2p' | 'none'): Promise<Libp2p<{ monitor?: Monitor }>> {
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ enableKeepAlive: false })],
    connectionMonitor: monitor === 'libp2p' ? { pingInterval: 200 } : { enabled: false },
    services: {
      ping: ping(),
      ...(monitor === 'warren' ? { monitor: connMonitor({ intervalMs: 200 }) } : {}),
    },
  })
  cleanups.push(() => n.stop())
  return n as Libp2p<{ monitor?: Monitor }>
}

/** Counts the ping streams `n` answers from now on. */
function countPingStreams(n: Libp2p): () => number {
  let count = 0
  const registrar = (
    n as unknown as {
      components: { registrar: { getHandler(p: string): { handler: (s: Stream, c: Connection) => unknown } } }
    }
  ).components.registrar
  const entry = registrar.getHandler(PING_PROTOCOL)
  const original = entry.handler
  entry.handler = (s, c) => {
    count++
    return original(s, c)
  }
  return () => count
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('the connection monitor', () => {
  it('checks with Yamux PING frames: the far side answers no ping stream, and the connection stays', async () => {
    const [checker, far] = [await node('warren'), await node('none')]
    const answered = countPingStreams(far)
    const conn = await checker.dial(far.getMultiaddrs()[0]!)
    await sleep(1_200)
    assert.equal(answered(), 0)
    assert.equal(conn.status, 'open')
    assert.ok(typeof conn.rtt === 'number' && conn.rtt >= 0 && conn.rtt < 1_000, `rtt ${conn.rtt}`)
    assert.equal(checker.services.monitor!.aborted, 0)
  })

  it("js-libp2p's monitor opens a ping stream for every check (what the far side is spared)", async () => {
    const [checker, far] = [await node('libp2p'), await node('none')]
    const answered = countPingStreams(far)
    await checker.dial(far.getMultiaddrs()[0]!)
    await eventually(() => answered() >= 3 || undefined, { timeoutMs: 5_000, message: 'three ping streams' })
  })

  it('aborts the connection of a peer that stopped answering', async () => {
    const checker = await node('warren')
    const child: ChildProcess = spawn(NODE, [BARE_PEER, checker.getMultiaddrs()[0]!.toString()], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    cleanups.push(() => {
      child.kill('SIGCONT')
      child.kill('SIGTERM')
    })
    const line = await new Promise<string>((r) => createInterface({ input: child.stdout! }).once('line', r))
    assert.deepEqual(JSON.parse(line), { connected: true })
    const conn = await eventually(() => checker.getConnections()[0], { message: "the child's connection" })
    const closed = new Promise<Event>((r) => conn.addEventListener('close', r, { once: true }))
    assert.ok(child.kill('SIGSTOP'))
    // libp2p's adaptive time-out: 5 s at least
    const evt = (await Promise.race([closed, sleep(15_000).then(() => undefined)])) as
      | (Event & { error?: Error })
      | undefined
    assert.ok(evt !== undefined, 'the monitor did not close the connection within 15 s')
    assert.equal(conn.status, 'aborted')
    assert.equal(checker.services.monitor!.aborted, 1)
    assert.match(String(evt.error?.message), /^the connection's liveness check failed: /)
  })

  it('checkConnection falls back to a ping stream on a connection without a muxer ping', async () => {
    const [a, far] = [await node('none'), await node('none')]
    const answered = countPingStreams(far)
    const conn = await a.dial(far.getMultiaddrs()[0]!)
    const noMuxerPing = { newStream: conn.newStream.bind(conn) } as unknown as Connection
    const ms = await checkConnection(noMuxerPing, new AbortController().signal, 5_000)
    assert.ok(ms >= 0 && ms < 5_000, `${ms} ms`)
    assert.equal(answered(), 1)
    // with the muxer: no stream
    await checkConnection(conn, new AbortController().signal, 5_000)
    assert.equal(answered(), 1)
  })

  it('checkConnection rejects at once on an aborted signal', async () => {
    const [a, far] = [await node('none'), await node('none')]
    const conn = await a.dial(far.getMultiaddrs()[0]!)
    const stop = new AbortController()
    stop.abort(new Error('stopped'))
    await assert.rejects(checkConnection(conn, stop.signal, 5_000), /^Error: stopped$/)
  })
})
