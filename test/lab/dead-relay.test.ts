/**
 * One dead relay of two must not block direct paths: two `warren relay` processes, nodes A and B behind cone NATs
 * with both relays in `relays`. Once both nodes know both relays' STUN responders, the relay that is not B's home
 * silently vanishes (every packet dropped, no RST). A then reaches B by ticket and the upgrade still goes direct with
 * the one relay that answers STUN, naming the silent one in its status as not tested.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { reap } from '../../src/testing/natlab/lines.ts'
import type { DirectPathStatus } from '../../src/traversal/upgrade/types.ts'
import { describeUntested } from '../../src/traversal/upgrade/untested.ts'
import { eventually } from '../support/eventually.ts'
import { labSkip } from '../support/lab.ts'
import { type Proc, spawnProc } from './fixtures/fault-pair.ts'
import { silence } from './fixtures/faults.ts'

const MAIN = resolve('src/cli/main.ts')
const NODE = resolve('test/lab/fixtures/path-node.ts')
const HOSTS = ['relay', 'relay2'] as const

describe('one dead relay of two (cone × cone)', { skip: labSkip }, () => {
  let lab: Lab | undefined
  let dir = ''
  const procs: Proc[] = []
  const s = {} as {
    a: Proc
    b: Proc
    bId: string
    ticket: string
    relays: { host: string; id: string }[]
    home: string
  }

  before(async () => {
    lab = await createLab({ natA: 'cone', natB: 'cone', publicHosts: [...HOSTS] })
    dir = await mkdtemp(join(tmpdir(), 'warren-dead-relay-'))
    const keyFile = join(dir, 'b.key')
    const bKey = await generateNodeKey()
    await saveNodeKey(keyFile, bKey)
    s.bId = peerIdFromPrivateKey(bKey).toString()
    s.relays = await Promise.all(
      HOSTS.map(async (host) => {
        const args = [
          '--home',
          join(dir, host),
          'relay',
          '--json',
          '--listen',
          '/ip4/0.0.0.0/tcp/4001',
          '--allow',
          s.bId,
        ]
        const p = spawnProc(lab!, host, MAIN, args, `relay on ${host}`)
        procs.push(p)
        return { host, id: (JSON.parse(String((await p.expect('text', 45_000)).text)) as { id: string }).id }
      }),
    )
    const addrs = s.relays.map((r) => `/ip4/${lab!.address(r.host)}/tcp/4001/p2p/${r.id}`)
    s.b = spawnProc(lab, 'b', NODE, ['serve', keyFile, ...addrs], 'node b')
    procs.push(s.b)
    s.a = spawnProc(lab, 'a', NODE, ['dial', ...addrs], 'node a')
    procs.push(s.a)
    const [bReady] = await Promise.all([s.b.expect('ready', 45_000), s.a.expect('ready', 45_000)])
    s.ticket = String(bReady.ticket)
    s.home = (bReady.relay as { home: string }).home
  })
  after(async () => {
    for (const p of procs) p.chan.send({ type: 'cmd', op: 'finish' })
    await Promise.all(procs.map((p) => reap(p.child, 10_000)))
    await lab?.close()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('still goes direct with the relay that answers STUN, and says which one it could not test', async () => {
    const l = lab!
    // both nodes know both STUN responders before one of them dies
    for (const n of [s.a, s.b]) {
      await eventually(async () => ((await n.ask({ op: 'stun' }, 'stun', 10_000)).servers as string[]).length === 2, {
        timeoutMs: 20_000,
        intervalMs: 200,
        message: `${n.name} learns both relays' STUN ports`,
      })
    }
    const dead = s.relays.find((r) => r.id !== s.home)!
    await silence(l, dead.host)
    await s.a.ask({ op: 'reach', ticket: s.ticket }, 'reached', 30_000)
    const w = await s.a.ask(
      { op: 'wait', id: s.bId, kind: 'direct', state: 'direct', timeoutMs: 20_000 },
      'waited',
      25_000,
    )
    assert.equal(w.ok, true, `no direct path with one relay dead: ${JSON.stringify(w)}\n${s.a.stderr.join('')}`)
    const untested = (w.upgrade as { untested?: string[] }).untested ?? []
    assert.deepEqual(
      untested.map((u) => u.split(' ')[0]),
      [`${l.address(dead.host)}:3478`],
      `status names the silent relay: ${JSON.stringify(w.upgrade)}`,
    )
    // and `warren status` says so in its text, after the peer's path
    const text = describeUntested(w.upgrade as DirectPathStatus)
    assert.match(text, new RegExp(`^ {2}\\(untested: ${l.address(dead.host).replaceAll('.', '\\.')}:3478 \\(`), text)
    // the bytes take the direct path
    const sent = await s.a.ask({ op: 'send', ticket: s.ticket, bytes: 4 * 1024 * 1024 }, 'sent', 60_000)
    assert.equal(sent.answer, `${4 * 1024 * 1024} ${String(sent.sha256)}`)
    assert.equal((sent.path as { kind: string }).kind, 'direct')
  })
})
