/**
 * Running a relay for real: `warren relay reload` and SIGHUP take a new relay.json (allow list, tokens, private,
 * limits) without a restart and without dropping circuits, a bad file changes nothing, and a relay admits nodes by a
 * shared token (config `relayTokens` on the node) as well as by id.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { isWarrenError } from '../../src/errors.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { lineChannel } from '../../src/testing/natlab/lines.ts'
import { runCli, spawnCli } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

const MiB = 1024 * 1024
const TOKEN = 'household-9f3c2a7be1d04c55'

/** Sends `bytes` in two halves with `between` run in the middle, half-closes, and returns the hash server's answer. */
async function sendAround(
  stream: Stream,
  bytes: number,
  between: () => Promise<void>,
): Promise<{ answer: string; want: string }> {
  const hash = createHash('sha256')
  const answer: Buffer[] = []
  const reading = (async () => {
    for await (const c of stream) answer.push(Buffer.from(c.subarray()))
  })()
  reading.catch(() => {})
  const sendHalf = async (n: number): Promise<void> => {
    for (let sent = 0; sent < n; ) {
      const buf = randomBytes(Math.min(64 * 1024, n - sent))
      hash.update(buf)
      sent += buf.length
      if (!stream.send(buf)) await stream.onDrain({ signal: AbortSignal.timeout(20_000) })
    }
  }
  await sendHalf(bytes / 2)
  await between()
  await sendHalf(bytes / 2)
  await stream.close({ signal: AbortSignal.timeout(20_000) })
  await reading
  return { answer: Buffer.concat(answer).toString().trim(), want: `${bytes} ${hash.digest('hex')}` }
}

describe('relay tokens (in process)', () => {
  let hash: TestServer
  const stops: Array<{ stop(): unknown }> = []
  before(async () => {
    hash = await hashServer()
  })
  after(async () => {
    for (const s of stops.reverse()) await s.stop()
    await hash.close()
  })

  it('a node with the relay token gets an unlimited reservation on a private relay; a wrong token gets nothing', async () => {
    const relay = await startTestRelay({ private: true, tokens: [TOKEN], limits: { dataBytes: 64 * 1024 } })
    stops.push(relay)
    const relayId = relay.peerId.toString()
    const b = await nodeKey()
    const nodeB = await startNode({
      key: b,
      config: {
        relays: [relay.addrs[0]!],
        relayTokens: { [relayId]: TOKEN },
        services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } },
      },
    })
    stops.push(nodeB)
    assert.equal(nodeB.homeRelay!.status().home, relayId)
    assert.equal(nodeB.homeRelay!.status().limits, null, 'unlimited, as if on the allow list')
    const st = relay.status()
    assert.deepEqual(st.tokens, { configured: 1, nodes: [b.id] })
    assert.deepEqual(
      st.reservations.map((r) => ({ node: r.node, allowed: r.allowed, admission: r.admission, limits: r.limits })),
      [{ node: b.id, allowed: true, admission: 'token', limits: null }],
    )
    assert.ok(!JSON.stringify(st).includes(TOKEN), 'the status never shows a token')

    // 4 MiB through a relay whose stranger limit is 64 KiB: the token made B's circuits unlimited
    const nodeA = await startNode()
    stops.push(nodeA)
    const r = await transfer(await nodeA.openService(nodeB.identity().ticket, 'hash'), 4 * MiB)
    assert.equal(r.answer, `${r.sent} ${r.sha256}`)

    const lines: string[] = []
    const c = await nodeKey()
    const nodeC = await startNode({
      key: c,
      lines,
      config: { relays: [relay.addrs[0]!], relayTokens: { [relayId]: 'not-the-token-at-all' } },
    })
    stops.push(nodeC as WarrenNode)
    assert.equal(nodeC.homeRelay!.status().home, null)
    assert.equal(nodeC.homeRelay!.status().relays[0]!.state, 'refused')
    assert.ok(
      lines.includes(
        `warn relay ${relayId} refused this node's token (relayTokens): ask the relay's operator for the current token`,
      ),
      lines.join('\n'),
    )
    assert.ok(relay.lines.includes(`warn node ${c.id} presented a token that is not one of this relay's tokens`))
    assert.deepEqual(relay.status().tokens.nodes, [b.id])
  })

  it('relay and node settings refuse short tokens and bad relay ids, with the field', async () => {
    const { validateRelayConfig } = await import('../../src/relay/server/config.ts')
    assert.throws(
      () => validateRelayConfig({ tokens: ['short'] }),
      (e: unknown) =>
        isWarrenError(e, 'ERR_CONFIG_INVALID') &&
        e.message ===
          'relay settings are invalid:\n  tokens[0]: is shorter than 16 characters: use a long random secret, e.g. from `openssl rand -hex 16`',
    )
    const { validateConfig } = await import('../../src/config/load.ts')
    assert.throws(
      () => validateConfig({ relayTokens: { laptop: TOKEN } }),
      (e: unknown) =>
        isWarrenError(e, 'ERR_CONFIG_INVALID') &&
        e.message ===
          'config is invalid:\n  relayTokens: key "laptop" is not a relay id: "laptop" is not a node id: it does not start with 12D3KooW (base58) or k51qzi5uqu5 (base36)',
    )
  })
})

interface RelayProcess {
  home: string
  child: ChildProcess
  id: string
  addr: string
  stderr: string[]
  exited: Promise<number | null>
}

describe('warren relay reload and SIGHUP (a relay process)', () => {
  let relay: RelayProcess
  let hash: TestServer
  const stops: Array<{ stop(): unknown }> = []
  const b = { key: undefined as unknown as Awaited<ReturnType<typeof nodeKey>> }
  const json = (o: unknown): Promise<void> => writeFile(join(relay.home, 'relay.json'), JSON.stringify(o))
  const base = { stun: { host: '127.0.0.1', port: 0 }, limits: { dataBytes: 64 * 1024 } }

  before(async () => {
    hash = await hashServer()
    b.key = await nodeKey()
    const home = await mkdtemp(join(tmpdir(), 'warren-relay-reload-'))
    await writeFile(join(home, 'relay.json'), JSON.stringify({ ...base, private: true }))
    const child = spawnCli(['--home', home, 'relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const stderr: string[] = []
    child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const ready = await lineChannel(child.stdout!, child.stdin!, 'warren relay').next('text', 45_000)
    const info = JSON.parse(String(ready.text)) as { id: string; addrs: string[] }
    relay = { home, child, id: info.id, addr: info.addrs[0]!, stderr, exited }
  })
  after(async () => {
    for (const s of stops.reverse()) await s.stop()
    if (relay.child.exitCode === null) relay.child.kill('SIGKILL')
    await relay.exited
    await rm(relay.home, { recursive: true, force: true })
    await hash.close()
  })

  it('`warren relay reload` lets a refused node in without a restart', async () => {
    const nodeB = await startNode({
      key: b.key,
      config: { relays: [relay.addr], services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } } },
    })
    stops.push(nodeB)
    assert.equal(nodeB.homeRelay!.status().relays[0]!.state, 'refused')
    await json({ ...base, private: true, allow: [b.key.id] })
    const r = await runCli(['--home', relay.home, 'relay', 'reload', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      reloaded: true,
      config: join(relay.home, 'relay.json'),
      allow: 1,
      tokens: 0,
      private: true,
      limits: {
        maxReservations: 128,
        maxReservationsPerIp: 4,
        maxConnectionsPerIp: 128,
        maxCircuits: 512,
        maxCircuitsPerNode: 16,
        reservationTtlSec: 3600,
        dataBytes: 65536,
        durationSec: 120,
      },
      restartNeeded: [],
    })
    // the node retries on its own (back-off from 1 s) and now gets an unlimited reservation
    await nodeB.homeRelay!.waitForHome(20_000)
    assert.equal(nodeB.homeRelay!.status().limits, null)
    const text = await runCli(['--home', relay.home, 'relay', 'reload'])
    assert.equal(
      text.stdout,
      `reloaded ${join(relay.home, 'relay.json')}: 1 allowed node(s), 0 token(s), private, bounded 64 KiB and 120 s per relayed connection\n`,
    )
  })

  it('SIGHUP reloads too; a circuit open across the reload carries its whole transfer', async () => {
    const nodeB = stops.find((s) => (s as WarrenNode).peerId?.toString() === b.key.id) as WarrenNode
    const nodeA = await startNode()
    stops.push(nodeA)
    const other = await nodeKey()
    const stream = await nodeA.openService(nodeB.identity().ticket, 'hash')
    const before = (await runCli(['--home', relay.home, 'relay', 'status', '--json'])).stdout
    const opened = (JSON.parse(before) as { totals: { circuitsOpened: number } }).totals.circuitsOpened
    const r = await sendAround(stream, 8 * MiB, async () => {
      await json({
        ...base,
        private: true,
        allow: [b.key.id, other.id],
        limits: { dataBytes: 32 * 1024, durationSec: 30 },
      })
      relay.child.kill('SIGHUP')
      await eventually(
        () => relay.stderr.join('').includes('2 allowed node(s), 0 token(s), private, bounded 32768 bytes and 30 s'),
        {
          timeoutMs: 10_000,
          message: 'the relay logs the reload',
        },
      )
    })
    assert.equal(r.answer, r.want, 'the transfer across the reload arrived whole')
    const st = JSON.parse((await runCli(['--home', relay.home, 'relay', 'status', '--json'])).stdout) as {
      allow: string[]
      limits: { dataBytes: number }
      totals: { circuitsOpened: number }
    }
    assert.deepEqual(st.allow, [b.key.id, other.id])
    assert.equal(st.limits.dataBytes, 32 * 1024)
    assert.equal(st.totals.circuitsOpened, opened, 'no new circuit: the one open across the reload stayed')
  })

  it('a bad relay.json changes nothing (ERR_CONFIG_INVALID); listen changes need a restart, and say so', async () => {
    await json({ ...base, private: 'yes' })
    const bad = await runCli(['--home', relay.home, 'relay', 'reload'])
    assert.equal(bad.code, 3)
    assert.equal(
      bad.stderr,
      `warren: ${join(relay.home, 'relay.json')} with the command-line flags are invalid:\n  private: Invalid input: expected boolean, received string\n` +
        'hint: Fix the fields named above in relay.json or the matching flags; docs/relay.md describes every key.\n',
    )
    const st = JSON.parse((await runCli(['--home', relay.home, 'relay', 'status', '--json'])).stdout) as {
      private: boolean
      allow: string[]
    }
    assert.equal(st.private, true)
    assert.equal(st.allow.length, 2)
    // --listen was given on the command line and wins over relay.json; the STUN port comes from relay.json
    await json({ ...base, stun: { host: '127.0.0.1', port: 1 }, private: true, allow: [b.key.id], tokens: [TOKEN] })
    const r = await runCli(['--home', relay.home, 'relay', 'reload'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /: 1 allowed node\(s\), 1 token\(s\), private, .*\nrestart the relay to apply: stun\n$/)
  })
})
