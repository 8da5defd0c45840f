/**
 * A relay's Prometheus metrics (`warren relay --metrics host:port`), scraped from a real relay process after real
 * relayed transfers: reservations by kind, circuits opened and open, bytes relayed, circuits ended by cause (closed,
 * data limit, duration limit) and refusals; a bad --metrics address is refused with the field and the reason.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { lineChannel } from '../../src/testing/natlab/lines.ts'
import { runCli, spawnCli } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

const MiB = 1024 * 1024
const DATA_LIMIT = 256 * 1024

/** GET http://<addr><path>: status and body. */
function get(addr: string, path: string): Promise<{ status: number; body: string; type: string }> {
  const i = addr.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const req = request({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)), path }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          body: Buffer.concat(chunks).toString('utf8'),
          type: String(res.headers['content-type']),
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

/** The value of the sample `name{labels} value` (or `name value` without labels), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (want.length === 0 && line.startsWith(`${name} `)) return Number(line.slice(name.length + 1))
    if (!line.startsWith(`${name}{`)) continue
    const have = line.slice(name.length + 1, line.lastIndexOf('}')).split(',')
    if (want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

describe('relay metrics', () => {
  let home: string
  let child: ChildProcess | undefined
  let exited: Promise<unknown> = Promise.resolve()
  let hash: TestServer
  const nodes: WarrenNode[] = []
  let metrics: string
  let relayAddr: string
  const allowed = nodeKey()

  before(async () => {
    hash = await hashServer()
    home = await mkdtemp(join(tmpdir(), 'warren-relay-metrics-'))
    const relayJson = {
      stun: { host: '127.0.0.1', port: 0 },
      allow: [(await allowed).id],
      limits: { dataBytes: DATA_LIMIT, durationSec: 1, maxReservations: 1 },
    }
    await writeFile(join(home, 'relay.json'), JSON.stringify(relayJson))
    child = spawnCli([
      '--home',
      home,
      'relay',
      '--json',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--metrics',
      '127.0.0.1:0',
    ])
    const stderr: string[] = []
    child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
    const proc = child
    exited = new Promise((r) => proc.once('exit', r))
    const ready = await lineChannel(child.stdout!, child.stdin!, 'warren relay')
      .next('text', 45_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${stderr.join('')}`)
      })
    const info = JSON.parse(String(ready.text)) as { addrs: string[]; metrics: string | null }
    assert.match(info.metrics ?? '', /^127\.0\.0\.1:\d+$/)
    metrics = info.metrics!
    relayAddr = info.addrs[0]!
  })
  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
    await hash?.close()
    if (home !== undefined) await rm(home, { recursive: true, force: true })
  })
  const start = async (...args: Parameters<typeof startNode>): Promise<WarrenNode> => {
    const n = await startNode(...args)
    nodes.push(n)
    return n
  }

  it('count reservations, circuits, bytes, ends by cause and refusals of real relayed transfers', async () => {
    const relays = [relayAddr]
    const services = { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } }
    const before = await get(metrics, '/metrics')
    assert.equal(before.status, 200)
    assert.match(before.type, /^text\/plain; version=0\.0\.4/)
    assert.equal(sample(before.body, 'warren_relay_circuits_open'), 0)
    assert.equal(sample(before.body, 'warren_relay_circuits_opened_total'), 0)

    const b = await start({ key: await allowed, config: { relays, services } }) // admitted: unlimited
    const c = await start({ config: { relays, services } }) // a stranger: bounded, the one reservation allowed
    const d = await start({ config: { relays } }) // a second stranger: refused (maxReservations 1)
    assert.equal(d.homeRelay!.status().home, null)
    const a = await start()

    // 4 MiB to the admitted node, checksummed; then its connection closes cleanly
    const r = await transfer(await a.openService(b.identity().ticket, 'hash'), 4 * MiB)
    assert.equal(r.answer, `${r.sent} ${r.sha256}`)
    let text = (await get(metrics, '/metrics')).body
    assert.equal(sample(text, 'warren_relay_circuits_open'), 1)
    await a.libp2p.hangUp(b.peerId)
    // past the stranger's data limit the relay cuts the circuit
    const cut = await transfer(await a.openService(c.identity().ticket, 'hash'), 2 * MiB, 10_000).then(
      (x) => (x.answer === `${x.sent} ${x.sha256}` ? 'completed' : 'cut'),
      () => 'cut',
    )
    assert.equal(cut, 'cut')
    // a stranger's circuit left open past its duration limit (1 s) is closed by the relay
    await eventually(async () => sample((await get(metrics, '/metrics')).body, 'warren_relay_circuits_open') === 0, {
      timeoutMs: 20_000,
      message: 'the cut circuit closed',
    })
    const idle = await a.connect(c.identity().ticket)
    await eventually(() => idle.status !== 'open', { timeoutMs: 10_000, message: 'the relay closes the idle circuit' })

    await eventually(
      async () => {
        text = (await get(metrics, '/metrics')).body
        return sample(text, 'warren_relay_circuits_open') === 0
      },
      { timeoutMs: 20_000, message: 'both circuits closed' },
    )
    assert.equal(sample(text, 'warren_relay_reservations', { kind: 'admitted' }), 1)
    assert.equal(sample(text, 'warren_relay_reservations', { kind: 'stranger' }), 1)
    assert.equal(sample(text, 'warren_relay_circuits_opened_total'), 3)
    const bytes = sample(text, 'warren_relay_circuit_bytes_total') ?? 0
    assert.ok(bytes >= 4 * MiB && bytes < 4 * MiB + 2 * DATA_LIMIT + 256 * 1024, `relayed ${bytes} bytes`)
    assert.equal(sample(text, 'warren_relay_circuits_ended_total', { cause: 'closed' }), 1)
    assert.equal(sample(text, 'warren_relay_circuits_ended_total', { cause: 'limit' }), 2)
    assert.equal(sample(text, 'warren_relay_circuits_ended_total', { cause: 'error' }), 0)
    assert.ok((sample(text, 'warren_relay_refusals_total', { kind: 'reservation' }) ?? 0) >= 1, text)
    assert.equal(sample(text, 'warren_relay_refusals_total', { kind: 'circuit' }), 0)
    assert.ok((sample(text, 'warren_relay_connections') ?? 0) >= 4)
    // the same figures as `warren relay status --json`
    const st = await runCli(['--home', home, 'relay', 'status', '--json'])
    assert.equal(st.code, 0, st.stderr)
    const totals = JSON.parse(st.stdout).totals as { circuitsEnded: Record<string, number>; bytesRelayed: number }
    assert.deepEqual(totals.circuitsEnded, { limit: 2, closed: 1, error: 0 })
    assert.equal(totals.bytesRelayed, bytes)

    const other = await get(metrics, '/')
    assert.equal(other.status, 404)
    assert.equal(other.body, 'not found: the relay serves Prometheus metrics at /metrics\n')
  })

  it('refuses a --metrics value that is not a listen address, naming the field', async () => {
    const bad = await runCli(['--home', home, 'relay', '--metrics', '127.0.0.1'])
    assert.equal(bad.code, 3)
    assert.match(
      bad.stderr,
      /metrics\.listen: is not a listen address: it has no port \(write host:port, or a bare port for 127\.0\.0\.1\)/,
    )
  })
})
