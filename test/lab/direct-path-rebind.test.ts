/**
 * Direct paths over time, with real Warren nodes in the NAT lab (cone × cone, one Warren relay with STUN):
 *
 * - **Rebinding.** Router ra's NAT gets a new UDP mapping for A (a masquerade rule with another port, then its UDP
 *   conntrack entries deleted: what a router restart or a flushed/expired mapping with a non-preserving NAT does). B's
 *   packets to A's old mapping are dropped, A's from the new one too. A must notice within seconds, keep using the
 *   relayed connection (a service stream over it carries its bytes intact, by the routers' counters), and punch again
 *   until the path is direct again (by Warren's report and by the counters, at the new mapping).
 * - **Idle.** Both routers time UDP conntrack entries out after 3 s (the sysctls are per network namespace); a direct
 *   path left idle for 15 s keeps its mapping (the entry never leaves ra's table) and stays the same connection.
 *
 * Every wait is bounded; the lab is torn down by the hooks of use-lab.ts in every outcome.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { type Counter, createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from '../../src/testing/natlab/lines.ts'
import { labSkip } from './use-lab.ts'

const NODE = resolve('test/lab/fixtures/path-node.ts')
const MAIN = resolve('src/cli/main.ts')
const MiB = 1024 * 1024
const BYTES = 16 * MiB
const RB = '198.18.0.3'
const A_LAN = '198.19.1.2'

interface Pair {
  lab: Lab
  a: Driver
  b: Driver
  aId: string
  bId: string
  ticket: string
  toDirectMs: number
}

interface Driver {
  chan: LineChannel
  child: ChildProcess
  stderr: string[]
  /** The next message of this type (or the process's `error`). */
  expect(type: string, timeoutMs: number): Promise<LineMessage>
  /** Sends a command and waits for its answer (or the process's `error`). */
  ask(cmd: Record<string, unknown>, answer: string, timeoutMs: number): Promise<LineMessage>
}

function driver(lab: Lab, host: 'a' | 'b', args: string[]): Driver {
  const child = lab.spawnNode(host, NODE, args)
  const stderr: string[] = []
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  const chan = lineChannel(child.stdout!, child.stdin!, `node ${host}`)
  // one watcher for the process's `error` message for its whole life (a waiter per call would leave stale ones that
  // swallow it); it settles when the process exits at the latest
  const failed = chan.next('error', 300_000).then(
    (m) => new Error(`node ${host}: ${String(m.message)}\n${stderr.join('')}`),
    () => undefined,
  )
  const expect = async (type: string, timeoutMs: number): Promise<LineMessage> => {
    const got = await Promise.race([chan.next(type, timeoutMs), failed]).catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr.join('')}`)
    })
    if (got === undefined) throw new Error(`node ${host} exited\n${stderr.join('')}`)
    if (got instanceof Error) throw got
    return got
  }
  return {
    chan,
    child,
    stderr,
    expect,
    ask: (cmd, answer, timeoutMs) => {
      chan.send({ type: 'cmd', ...cmd })
      return expect(answer, timeoutMs)
    },
  }
}

/**
 * A lab with one `warren relay` process (TCP 4001, STUN 3478; B on its allow list, so B's relayed connections are
 * unlimited as in a real deployment) and two nodes: B serves `hash` with the relay as home relay, A reaches it by
 * ticket and waits for the direct path. `setup` runs on the lab before the nodes start.
 */
function usePair(opts: { setup?: (lab: Lab) => Promise<void> } = {}): () => Pair {
  let lab: Lab | undefined
  let state: Pair | undefined
  let dir = ''
  before(async () => {
    lab = await createLab({ natA: 'cone', natB: 'cone', publicHosts: ['relay'] })
    await opts.setup?.(lab)
    dir = await mkdtemp(join(tmpdir(), 'warren-rebind-'))
    const keyFile = join(dir, 'key')
    const bKey = await generateNodeKey()
    await saveNodeKey(keyFile, bKey)
    const bId = peerIdFromPrivateKey(bKey).toString()
    const relayArgs = [
      '--home',
      join(dir, 'relay'),
      'relay',
      '--json',
      '--listen',
      '/ip4/0.0.0.0/tcp/4001',
      '--allow',
      bId,
    ]
    const relay = lab.spawnNode('relay', MAIN, relayArgs)
    const relayOut: string[] = []
    relay.stderr!.on('data', (d: Buffer) => relayOut.push(d.toString()))
    const text = await lineChannel(relay.stdout!, relay.stdin!, 'relay')
      .next('text', 45_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${relayOut.join('')}`)
      })
    const relayAddr = `/ip4/${lab.address('relay')}/tcp/4001/p2p/${(JSON.parse(String(text.text)) as { id: string }).id}`
    const b = driver(lab, 'b', ['serve', keyFile, relayAddr])
    const bReady = await b.expect('ready', 45_000)
    const a = driver(lab, 'a', ['dial', relayAddr])
    const aReady = await a.expect('ready', 45_000)
    const ticket = String(bReady.ticket)
    await a.ask({ op: 'reach', ticket }, 'reached', 30_000)
    const w = await a.ask(
      { op: 'wait', id: bReady.id, kind: 'direct', state: 'direct', timeoutMs: 20_000 },
      'waited',
      25_000,
    )
    assert.equal(w.ok, true, `no direct path at the start: ${JSON.stringify(w)}\n${a.stderr.join('')}`)
    state = { lab, a, b, aId: String(aReady.id), bId, ticket, toDirectMs: Number(w.ms) }
  })
  after(async () => {
    for (const d of [state?.a, state?.b]) {
      if (d === undefined) continue
      d.chan.send({ type: 'cmd', op: 'finish' })
      await reap(d.child, 10_000)
    }
    await lab?.close()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })
  return () => state!
}

const delta = (before: Record<string, Counter>, after: Record<string, Counter>, name: string): number =>
  (after[name]?.bytes ?? 0) - (before[name]?.bytes ?? 0)

/** A transfer of BYTES on the path new streams take, with ra's counters around it. */
async function send(lab: Lab, a: Driver, ticket: string) {
  const before = await lab.counters('ra')
  const r = await a.ask({ op: 'send', ticket, bytes: BYTES }, 'sent', 90_000)
  const after = await lab.counters('ra')
  const seen = (name: string): number => delta(before, after, name)
  assert.equal(r.answer, `${BYTES} ${String(r.sha256)}`, 'B received every byte A sent')
  return {
    path: r.path as { kind: string; addr: string },
    mibps: BYTES / MiB / (Number(r.ms) / 1000),
    direct: seen('out_peer') + seen('in_peer'),
    relayed: seen('out_relay') + seen('in_relay'),
  }
}

/** A's NAT mapping changes: new UDP flows leave ra from `port`, and every UDP entry (mapping) is deleted. */
async function rebind(lab: Lab, port: number): Promise<void> {
  await lab.exec(
    'ra',
    `nft insert rule inet warrenlab postrouting oifname "wan" meta l4proto udp masquerade to :${port}`,
  )
  await lab.exec('ra', 'conntrack -D -p udp >/dev/null 2>&1 || true')
}

/** Drops UDP between ra and rb in ra's forward path (before the counting chain), or lifts the block. */
async function blockUdp(lab: Lab, on: boolean): Promise<void> {
  if (!on) {
    await lab.exec('ra', 'nft delete table inet wlblock')
    return
  }
  await lab.exec(
    'ra',
    [
      'nft add table inet wlblock',
      `nft add chain inet wlblock blk '{ type filter hook forward priority -10; policy accept; }'`,
      `nft add rule inet wlblock blk ip daddr ${RB} meta l4proto udp drop`,
      `nft add rule inet wlblock blk ip saddr ${RB} meta l4proto udp drop`,
    ].join(' && '),
  )
}

/** ra's public UDP port for A's flow to rb (the direct path's mapping), if any. */
async function mappedPort(lab: Lab): Promise<number | undefined> {
  const entry = (await lab.conntrack('ra')).find(
    (e) => e.proto === 'udp' && e.original.src === A_LAN && e.original.dst === RB,
  )
  return entry?.reply.dport
}

describe('a direct path after the NAT rebinds (cone × cone)', { skip: labSkip }, () => {
  const pair = usePair()

  it('notices within seconds, keeps the relay as the working path, and punches again to a direct path at the new mapping', async (t) => {
    const { lab, a, b, bId, aId, ticket, toDirectMs } = pair()
    const first = await send(lab, a, ticket)
    assert.equal(first.path.kind, 'direct')
    assert.ok(first.direct >= BYTES, `${first.direct} bytes went router ↔ router before the rebinding`)
    const oldPort = await mappedPort(lab)
    assert.notEqual(oldPort, undefined, 'ra maps A to rb')

    const started = performance.now()
    await rebind(lab, 20_001)
    const lost = await a.ask({ op: 'wait', id: bId, kind: 'relay', timeoutMs: 20_000 }, 'waited', 25_000)
    const detectMs = performance.now() - started
    t.diagnostic(`relayed ${detectMs.toFixed(0)} ms after the rebinding: ${JSON.stringify(lost.states)}`)
    assert.equal(lost.ok, true, `A still reports ${JSON.stringify(lost)} 20 s after the rebinding`)
    const back = await a.ask(
      { op: 'wait', id: bId, kind: 'direct', state: 'direct', timeoutMs: 30_000 },
      'waited',
      35_000,
    )
    const redirectMs = performance.now() - started
    assert.equal(back.ok, true, `no direct path again: ${JSON.stringify(back)}\n${a.stderr.join('')}`)
    const upgrade = back.upgrade as { state: string; lost?: number; plan?: string }
    assert.equal(upgrade.state, 'direct')
    assert.equal(upgrade.lost, 1, 'the status counts the lost path')
    // B learns of the new connection a moment after A (the last Noise message is A's)
    const bSide = await b.ask(
      { op: 'wait', id: aId, kind: 'direct', state: 'direct', timeoutMs: 5_000 },
      'waited',
      10_000,
    )
    assert.equal(bSide.ok, true, `B reports ${JSON.stringify(bSide)}`)

    const again = await send(lab, a, ticket)
    assert.equal(again.path.kind, 'direct')
    assert.ok(again.direct >= BYTES, `${again.direct} bytes went router ↔ router after the re-punch`)
    assert.ok(again.relayed < BYTES / 8, `${again.relayed} bytes went through the relay`)
    assert.equal(await mappedPort(lab), 20_001, 'the direct path runs on the new mapping')
    t.diagnostic(
      `first direct ${toDirectMs.toFixed(0)} ms; mapping ${oldPort} → 20001; relayed after ${detectMs.toFixed(0)} ms, ` +
        `direct again after ${redirectMs.toFixed(0)} ms (states ${JSON.stringify([...(lost.states as string[]), ...(back.states as string[])])}); ` +
        `${first.mibps.toFixed(1)} / ${again.mibps.toFixed(1)} MiB/s before / after`,
    )
  })

  it('while UDP between the routers is blocked: a service stream goes over the relay intact, re-punches back off, and the path is direct once unblocked', async (t) => {
    const { lab, a, bId, ticket } = pair()
    const started = performance.now()
    await blockUdp(lab, true)
    try {
      await rebind(lab, 20_002)
      const lost = await a.ask({ op: 'wait', id: bId, kind: 'relay', timeoutMs: 20_000 }, 'waited', 25_000)
      const detectMs = performance.now() - started
      assert.equal(lost.ok, true, `A still reports ${JSON.stringify(lost)}`)
      const relayed = await send(lab, a, ticket)
      assert.equal(relayed.path.kind, 'relay')
      assert.ok(relayed.relayed >= BYTES, `${relayed.relayed} bytes went through the relay`)
      assert.ok(relayed.direct < MiB, `${relayed.direct} bytes went router ↔ router while blocked`)
      // at least one re-punch fails while blocked: the status says so and when the next one runs
      let failed: LineMessage | undefined
      for (let i = 0; i < 300 && failed === undefined; i++) {
        const p = await a.ask({ op: 'peer', id: bId }, 'peer', 5_000)
        const u = p.upgrade as { state: string; attempt?: number; retryAt?: number } | undefined
        if (u?.state === 'relayed' && (u.attempt ?? 0) >= 1 && u.retryAt !== undefined) failed = p
        else await new Promise((r) => setTimeout(r, 100))
      }
      assert.ok(failed !== undefined, 'no failed re-punch reported within 30 s')
      t.diagnostic(`relayed after ${detectMs.toFixed(0)} ms; while blocked: ${JSON.stringify(failed.upgrade)}`)
    } finally {
      await blockUdp(lab, false)
    }
    const unblocked = performance.now()
    const back = await a.ask(
      { op: 'wait', id: bId, kind: 'direct', state: 'direct', timeoutMs: 45_000 },
      'waited',
      50_000,
    )
    assert.equal(back.ok, true, `no direct path after unblocking: ${JSON.stringify(back)}\n${a.stderr.join('')}`)
    const again = await send(lab, a, ticket)
    assert.equal(again.path.kind, 'direct')
    assert.ok(again.direct >= BYTES, `${again.direct} bytes went router ↔ router after unblocking`)
    assert.equal(await mappedPort(lab), 20_002)
    t.diagnostic(
      `direct again ${(performance.now() - unblocked).toFixed(0)} ms after unblocking: ${JSON.stringify(back.upgrade)} ` +
        `(states ${JSON.stringify(back.states)})\n${a.stderr.join('')}`,
    )
  })
})

describe('an idle direct path outlives a 3-second router UDP timeout (cone × cone)', { skip: labSkip }, () => {
  const pair = usePair({
    setup: async (lab) => {
      for (const r of ['ra', 'rb'] as const) {
        await lab.exec(
          r,
          'echo 3 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout && echo 3 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream',
        )
      }
    },
  })

  it('keeps its NAT mapping through 15 s without traffic and carries the next stream on the same direct path', async (t) => {
    const { lab, a, bId, ticket } = pair()
    const { stdout } = await lab.exec('ra', 'cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream')
    assert.equal(stdout.trim(), '3', 'the timeout is set in the router namespace')
    const first = await send(lab, a, ticket)
    assert.equal(first.path.kind, 'direct')
    const port = await mappedPort(lab)
    assert.notEqual(port, undefined)
    const idleStart = await lab.counters('ra')
    const samples: (number | undefined)[] = []
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 500))
      samples.push(await mappedPort(lab))
    }
    const idleEnd = await lab.counters('ra')
    assert.deepEqual(new Set(samples), new Set([port]), `ra's mapping for A during 15 s of idle: ${samples.join(',')}`)
    const p = await a.ask({ op: 'peer', id: bId }, 'peer', 5_000)
    const u = p.upgrade as { state: string; lost?: number }
    assert.equal(u.state, 'direct')
    assert.equal(u.lost, undefined, 'the direct path was never lost')
    const again = await send(lab, a, ticket)
    assert.equal(again.path.addr, first.path.addr, 'the same direct connection')
    assert.ok(again.direct >= BYTES, `${again.direct} bytes went router ↔ router after the idle time`)
    const idle = (name: string): string =>
      `${(idleEnd[name]?.packets ?? 0) - (idleStart[name]?.packets ?? 0)} packets / ` +
      `${delta(idleStart, idleEnd, name)} B`
    t.diagnostic(
      `mapping ${port} held for 30 samples over 15 s; while idle ra forwarded ${idle('out_peer_udp')} to rb, ` +
        `${idle('in_peer_udp')} from rb and dropped ${idle('drop_unsolicited')} unsolicited`,
    )
  })
})
