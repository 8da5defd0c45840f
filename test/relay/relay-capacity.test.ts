/**
 * What lets one relay hold 10,000 idle reservations: the connection cap is a setting (`maxConnections`,
 * `--max-connections`) checked against the reservation cap and the open-files limit, and reaching it is logged; the
 * relay checks its connections with its own spread-out sweep instead of js-libp2p's all-at-once monitor; and
 * `warren relay` runs under its memory settings (bin/warren.js). Real nodes, sockets and processes.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { after, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { flagsToConfig } from '../../src/cli/relay.ts'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { openFilesLimit } from '../../src/open-files.ts'
import { createNode } from '../../src/p2p/create.ts'
import { validateRelayConfig } from '../../src/relay/server/config.ts'
import { descriptorProblem } from '../../src/relay/server/conn-cap.ts'
import { startConnSweep } from '../../src/relay/server/conn-sweep.ts'
import { startHeapCompaction } from '../../src/relay/server/heap-compact.ts'
import { NODE, WARREN_BIN } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { startTestRelay } from '../support/nodes.ts'

const BARE_PEER = resolve('test/relay/fixtures/bare-peer.ts')

const cleanups: (() => Promise<unknown>)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

/** A bare js-libp2p node on loopback (no identify, no monitor), optionally answering pings. */
async function bareNode(withPing: boolean): Promise<Libp2p> {
  const init = {
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
  }
  const node: Libp2p = withPing ? await createLibp2p({ ...init, services: { ping: ping() } }) : await createLibp2p(init)
  cleanups.push(async () => node.stop())
  return node
}

function problemsOf(input: unknown): string[] {
  try {
    validateRelayConfig(input)
  } catch (err) {
    assert.ok(isWarrenError(err, 'ERR_CONFIG_INVALID'), String(err))
    return err.details?.problems as string[]
  }
  assert.fail('the settings were accepted')
}

describe('relay capacity: the connection cap as a setting', () => {
  it('defaults to 4096 and takes 10,000 with as many reservations', () => {
    assert.equal(validateRelayConfig({}).maxConnections, 4_096)
    const c = validateRelayConfig({ maxConnections: 10_256, limits: { maxReservations: 10_000 } })
    assert.equal(c.maxConnections, 10_256)
    assert.equal(c.limits.maxReservations, 10_000)
  })

  it('refuses more reservations than connections, naming both and the fix', () => {
    assert.deepEqual(problemsOf({ limits: { maxReservations: 10_000 } }), [
      'limits.maxReservations: is 10000, more than maxConnections (4096): each reservation holds a connection to the ' +
        'relay; raise maxConnections (--max-connections) to at least 10000',
    ])
  })

  it('refuses a cap below 16 or above 1,000,000, and a fraction', () => {
    for (const bad of [15, 1_000_001, 100.5]) {
      const problems = problemsOf({ maxConnections: bad, limits: { maxReservations: 8 } })
      assert.equal(problems.length, 1, problems.join('\n'))
      assert.match(problems[0]!, /^maxConnections: /)
    }
  })

  it('--max-connections becomes maxConnections', () => {
    assert.deepEqual(flagsToConfig({ maxConnections: 10_000 }), { maxConnections: 10_000 })
  })

  it('reads the open-files limit and says when it is too low for the cap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-limits-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'limits')
    await writeFile(
      file,
      'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 1048576              files\n',
    )
    assert.equal(openFilesLimit(file), 1024)
    assert.equal(openFilesLimit(join(dir, 'absent')), undefined)
    assert.equal(typeof openFilesLimit(), 'number')
    assert.equal(descriptorProblem(4_096, 65_536), undefined)
    assert.equal(descriptorProblem(4_096, undefined), undefined)
    assert.equal(
      descriptorProblem(4_096, 1_024),
      'maxConnections is 4096 but this process may open only 1024 files (ulimit -n): connections past about 768 ' +
        'will fail with EMFILE; raise the limit to at least 4352 (ulimit -n, or LimitNOFILE= in a systemd unit)',
    )
  })

  it('a relay at its cap refuses further connections and says so once', async () => {
    const relay = await startTestRelay({ maxConnections: 16, limits: { maxReservations: 8 } })
    cleanups.push(async () => relay.stop())
    const addr = multiaddr(relay.addrs.find((a) => a.includes('/tcp/'))!)
    let connected = 0
    let refused = 0
    for (let i = 0; i < 20; i++) {
      const node = await bareNode(false)
      try {
        const conn = await node.dial(addr, { signal: AbortSignal.timeout(10_000) })
        // a refused connection may finish its handshake on the dialer's side before the relay drops it
        await eventually(() => conn.status !== 'open' || relay.libp2p.getConnections(node.peerId).length > 0, {
          timeoutMs: 10_000,
          message: 'the relay took or dropped the connection',
        })
        if (conn.status === 'open') connected++
        else refused++
      } catch {
        refused++
      }
    }
    assert.equal(connected, 16)
    assert.equal(refused, 4)
    assert.equal(relay.libp2p.getConnections().length, 16)
    // checked every 5 s
    const warnings = await eventually(
      () => {
        const found = relay.lines.filter((l) => l.includes('maxConnections'))
        return found.length > 0 ? found : undefined
      },
      { timeoutMs: 15_000, message: 'the relay warns that it is at its cap' },
    )
    assert.deepEqual(warnings, [
      'warn the relay holds 16 connections, its maxConnections: new connections are refused until some close; ' +
        'raise maxConnections in relay.json (or --max-connections) and restart the relay',
    ])
  })
})

describe('relay capacity: connections per address', () => {
  it('one address holds maxConnectionsPerIp connections of strangers; allowed nodes and freed slots still get in', async () => {
    const allowed = await bareNode(false)
    const relay = await startTestRelay({ allow: [allowed.peerId.toString()], limits: { maxConnectionsPerIp: 3 } })
    cleanups.push(async () => relay.stop())
    const addr = multiaddr(relay.addrs.find((a) => a.includes('/tcp/'))!)
    /** Dials the relay; true when the relay kept the connection (a refusal may come after the dialer's handshake). */
    const kept = async (node: Libp2p): Promise<boolean> => {
      try {
        const conn = await node.dial(addr, { signal: AbortSignal.timeout(10_000) })
        await eventually(() => conn.status !== 'open' || relay.libp2p.getConnections(node.peerId).length > 0, {
          timeoutMs: 10_000,
          message: 'the relay took or dropped the connection',
        })
        return conn.status === 'open'
      } catch {
        return false
      }
    }
    const strangers = [await bareNode(false), await bareNode(false), await bareNode(false), await bareNode(false)]
    const results: boolean[] = []
    for (const n of strangers) results.push(await kept(n))
    assert.deepEqual(results, [true, true, true, false])
    assert.equal(await kept(allowed), true, 'an allowed node is not counted against its address')
    const line = await eventually(() => relay.lines.find((l) => l.includes('maxConnectionsPerIp')), {
      timeoutMs: 5_000,
      message: 'the relay logs the refusal',
    })
    assert.equal(
      line,
      `warn refused a connection from ${strangers[3]!.peerId} at 127.0.0.1: limits.maxConnectionsPerIp (3) reached`,
    )
    await strangers[0]!.hangUp(relay.peerId)
    await eventually(() => relay.libp2p.getConnections(strangers[0]!.peerId).length === 0, {
      timeoutMs: 5_000,
      message: 'the relay sees the connection close',
    })
    assert.equal(await kept(strangers[3]!), true, 'a slot freed by a closed connection is taken again')
  })
})

describe('relay capacity: the connection sweep', () => {
  it('closes a connection whose peer stopped answering and keeps the ones that answer or lack ping', async () => {
    const hub = await createNode({
      privateKey: await generateNodeKey(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      preset: 'relay',
      monitor: 'off',
    })
    cleanups.push(async () => hub.stop())
    const addr = hub.getMultiaddrs()[0]!
    const answering = await bareNode(true)
    const silentOnPing = await bareNode(false)
    await answering.dial(addr)
    await silentOnPing.dial(addr)
    const known = new Set([answering.peerId.toString(), silentOnPing.peerId.toString()])
    const child: ChildProcess = spawn(NODE, [BARE_PEER, addr.toString()], { stdio: ['pipe', 'pipe', 'inherit'] })
    cleanups.push(async () => {
      child.kill('SIGCONT')
      child.kill('SIGTERM')
    })
    const line = await new Promise<string>((r) => createInterface({ input: child.stdout! }).once('line', r))
    assert.deepEqual(JSON.parse(line), { connected: true })
    const stopped = await eventually(
      () => hub.getConnections().find((c) => !known.has(c.remotePeer.toString()))?.remotePeer,
      { timeoutMs: 10_000, message: "the hub sees the child's connection" },
    )
    const lines: string[] = []
    const sweep = startConnSweep(hub, { periodMs: 500, tickMs: 100, timeoutMs: 1_000, log: (m) => lines.push(m) })
    cleanups.push(async () => sweep.stop())
    assert.ok(child.kill('SIGSTOP'))
    await eventually(() => hub.getConnections(stopped).length === 0 || undefined, {
      timeoutMs: 20_000,
      message: 'the sweep closes the connection of the stopped peer',
    })
    assert.equal(sweep.aborted, 1)
    assert.equal(lines.length, 1)
    assert.match(lines[0]!, new RegExp(`^closing the connection of ${stopped} \\(.+\\): its ping failed \\(`))
    assert.equal(hub.getConnections(answering.peerId).length, 1)
    assert.equal(hub.getConnections(silentOnPing.peerId).length, 1)
  })
})

describe('relay capacity: forgetting the nodes that left', () => {
  it("a node's identify data stays while it is connected and goes with its last connection", async () => {
    const relay = await startTestRelay({})
    cleanups.push(async () => relay.stop())
    const node = await createLibp2p({
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
      services: { identify: identify(), ping: ping() },
    })
    cleanups.push(async () => node.stop())
    await node.dial(multiaddr(relay.addrs.find((a) => a.includes('/tcp/'))!))
    const entry = await eventually(
      async () => {
        const p = await relay.libp2p.peerStore.get(node.peerId).catch(() => undefined)
        return p?.protocols.includes('/ipfs/ping/1.0.0') === true ? p : undefined
      },
      { message: 'the relay identified the node' },
    )
    assert.ok(entry.protocols.includes('/ipfs/id/1.0.0'), entry.protocols.join(' '))
    await node.stop()
    await eventually(async () => !(await relay.libp2p.peerStore.has(node.peerId)), {
      message: "the relay deletes the node's peer-store entry",
    })
  })

  it('stock js-libp2p keeps the entry after the last connection closed (the behaviour forget-peers.ts undoes)', async () => {
    const init = () => ({
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
      services: { identify: identify() },
    })
    const server = await createLibp2p({ ...init(), addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
    cleanups.push(async () => server.stop())
    const node = await createLibp2p(init())
    cleanups.push(async () => node.stop())
    await node.dial(server.getMultiaddrs()[0]!)
    await eventually(
      async () => ((await server.peerStore.get(node.peerId).catch(() => undefined))?.protocols.length ?? 0) > 0,
      { message: 'the server identified the node' },
    )
    await node.stop()
    await eventually(() => server.getConnections(node.peerId).length === 0, { message: 'the server saw it go' })
    assert.equal(await server.peerStore.has(node.peerId), true)
  })
})

describe('relay capacity: heap compaction', () => {
  it('compacts once the connection count moved and settled, at most once per interval, and not without gc', async () => {
    const hub = await createNode({
      privateKey: await generateNodeKey(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      preset: 'relay',
      monitor: 'off',
    })
    cleanups.push(async () => hub.stop())
    const calls: unknown[] = []
    let after = 0
    const compaction = startHeapCompaction(hub, {
      tickMs: 50,
      minIntervalMs: 0,
      minChange: 3,
      gc: (opts) => calls.push(opts),
      after: () => after++,
    })
    assert.ok(compaction !== undefined)
    cleanups.push(async () => compaction.stop())
    for (let i = 0; i < 2; i++) await (await bareNode(false)).dial(hub.getMultiaddrs()[0]!)
    // two connections: below minChange, nothing yet; a third one, and it settles
    await (await bareNode(false)).dial(hub.getMultiaddrs()[0]!)
    await eventually(() => compaction.runs === 1 || undefined, { message: 'one compaction after three connections' })
    assert.deepEqual(calls, [{ type: 'major', execution: 'sync', flavor: 'last-resort' }])
    assert.equal(after, 1)
    // this test process runs without --expose-gc: no gc, no compaction
    if ((globalThis as { gc?: unknown }).gc === undefined) assert.equal(startHeapCompaction(hub), undefined)
  })

  it("V8's gc takes those options (a real collection)", () => {
    const r = spawnSync(NODE, ['--expose-gc', '-e', "gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })"])
    assert.equal(r.status, 0, r.stderr.toString())
  })
})

describe('relay capacity: the relay process', { skip: process.platform === 'linux' ? false : 'Linux only' }, () => {
  it('`warren relay --listen …` runs with --expose-gc, the fixed heap growing factor and the daemon settings, and stops with status 0', async () => {
    const home = await mkdtemp(join(tmpdir(), 'warren-relay-launch-'))
    cleanups.push(() => rm(home, { recursive: true, force: true }))
    const env: NodeJS.ProcessEnv = { ...process.env, WARREN_LOG: 'warn' }
    for (const k of ['WARREN_NODE_TUNED', 'NODE_OPTIONS', 'WARREN_RELAY_HOME']) delete env[k]
    const child = spawn(
      NODE,
      [WARREN_BIN, '--home', home, 'relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-stun', '--json'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const line = await new Promise<string>((r) => createInterface({ input: child.stdout! }).once('line', r))
    assert.match((JSON.parse(line) as { id: string }).id, /^12D3KooW/)
    const args = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')
    // the JSON line comes just before the SIGTERM handler is installed: wait for the handler (SigCgt, bit 15)
    const caught = (): bigint =>
      BigInt(`0x${/^SigCgt:\s+(\w+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]}`)
    await eventually(() => (caught() & (1n << 14n)) !== 0n, { message: 'the relay handles SIGTERM' })
    assert.ok(args.includes('--expose-gc'), args.join(' '))
    assert.ok(args.includes('--max-semi-space-size=2'), args.join(' '))
    // the fixed heap growing factor: without it every forced compaction left the relay collecting every few MiB of
    // relayed bytes (UPSTREAM.md, the heap growing row)
    assert.ok(args.includes('--heap-growing-percent=200'), args.join(' '))
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
  })
})
