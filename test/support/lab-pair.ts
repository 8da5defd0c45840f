/**
 * A live pair of Warren nodes behind two NATs in the lab, kept for a whole describe block (the direct-path lab tests):
 * one `warren relay` and two nodes driven over stdin/stdout (test/lab/fixtures/path-node.ts), transfers with router
 * counters around them, and the ways a test disturbs the NATs (a new mapping, UDP or TCP blocked between the routers).
 * For one measured run of a pair with two relays, see lab-pair-run.ts.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { type Counter, createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from '../../src/testing/natlab/lines.ts'
import { WARREN_BIN } from './cli.ts'

const NODE = resolve('test/lab/fixtures/path-node.ts')
export const MiB = 1024 * 1024
export const BYTES = 16 * MiB
const RB = '198.18.0.3'
const A_LAN = '198.19.1.2'

export interface LabPair {
  lab: Lab
  a: Driver
  b: Driver
  aId: string
  bId: string
  ticket: string
  toDirectMs: number
}

export interface Driver {
  chan: LineChannel
  child: ChildProcess
  stderr: string[]
  /** The next message of this type (or the process's `error`). */
  expect(type: string, timeoutMs: number): Promise<LineMessage>
  /** Sends a command and waits for its answer (or the process's `error`). */
  ask(cmd: Record<string, unknown>, answer: string, timeoutMs: number): Promise<LineMessage>
}

function driver(lab: Lab, host: 'a' | 'b', args: string[], udxOnly: boolean): Driver {
  // the fixture reads WARREN_LAB_TCP (lab-warren.ts): 0 turns TCP direct paths off, so the path is UDX
  const env = udxOnly ? { env: { ...process.env, WARREN_LAB_TCP: '0' } } : {}
  const child = lab.spawnNode(host, NODE, args, env)
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
 * ticket and waits for the direct path (unless `expectDirect` is false). `setup` runs on the lab before the nodes start.
 * `udxOnly`: the nodes punch over UDP only (config traversal.tcp false), for the tests of UDX paths' upkeep.
 */
export function useLabPair(
  opts: { setup?: (lab: Lab) => Promise<void>; expectDirect?: boolean; udxOnly?: boolean } = {},
): () => LabPair {
  let lab: Lab | undefined
  let state: LabPair | undefined
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
    const relay = lab.spawnNode('relay', WARREN_BIN, relayArgs)
    const relayOut: string[] = []
    relay.stderr!.on('data', (d: Buffer) => relayOut.push(d.toString()))
    const text = await lineChannel(relay.stdout!, relay.stdin!, 'relay')
      .next('text', 45_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${relayOut.join('')}`)
      })
    const relayAddr = `/ip4/${lab.address('relay')}/tcp/4001/p2p/${(JSON.parse(String(text.text)) as { id: string }).id}`
    const b = driver(lab, 'b', ['serve', keyFile, relayAddr], opts.udxOnly === true)
    const bReady = await b.expect('ready', 45_000)
    const a = driver(lab, 'a', ['dial', relayAddr], opts.udxOnly === true)
    const aReady = await a.expect('ready', 45_000)
    const ticket = String(bReady.ticket)
    await a.ask({ op: 'reach', ticket }, 'reached', 30_000)
    if (opts.expectDirect === false) {
      state = { lab, a, b, aId: String(aReady.id), bId, ticket, toDirectMs: Number.NaN }
      return
    }
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

export const delta = (before: Record<string, Counter>, after: Record<string, Counter>, name: string): number =>
  (after[name]?.bytes ?? 0) - (before[name]?.bytes ?? 0)

/** A transfer of BYTES on the path new streams take, with ra's counters around it. */
export async function send(lab: Lab, a: Driver, ticket: string) {
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
export async function rebind(lab: Lab, port: number): Promise<void> {
  await lab.exec(
    'ra',
    `nft insert rule inet warrenlab postrouting oifname "wan" meta l4proto udp masquerade to :${port}`,
  )
  await lab.exec('ra', 'conntrack -D -p udp >/dev/null 2>&1 || true')
}

/** Drops UDP between ra and rb in ra's forward path (before the counting chain), or lifts the block. */
export function blockUdp(lab: Lab, on: boolean): Promise<void> {
  return block(lab, 'udp', on)
}

/** Drops `proto` between ra and rb in ra's forward path (before the counting chain), or lifts the block. */
export async function block(lab: Lab, proto: 'udp' | 'tcp', on: boolean): Promise<void> {
  const table = `wlblock_${proto}`
  if (!on) {
    await lab.exec('ra', `nft delete table inet ${table}`)
    return
  }
  await lab.exec(
    'ra',
    [
      `nft add table inet ${table}`,
      `nft add chain inet ${table} blk '{ type filter hook forward priority -10; policy accept; }'`,
      `nft add rule inet ${table} blk ip daddr ${RB} meta l4proto ${proto} drop`,
      `nft add rule inet ${table} blk ip saddr ${RB} meta l4proto ${proto} drop`,
    ].join(' && '),
  )
}

/** ra's public UDP port for A's flow to rb (the direct path's mapping), if any. */
export async function mappedPort(lab: Lab): Promise<number | undefined> {
  const entry = (await lab.conntrack('ra')).find(
    (e) => e.proto === 'udp' && e.original.src === A_LAN && e.original.dst === RB,
  )
  return entry?.reply.dport
}
