/**
 * A peer dials the mapped address first (NAT lab, symmetric × symmetric, miniupnpd on B's router only): once B holds a
 * mapping, A reaches B by a ticket that carries B's mapped TCP address, and the first connection A opens to B — the one
 * `connect` returns, and the oldest in A's connection list — goes to that address, not through the relay; 1 MiB then
 * goes over it, SHA-256 checked, and A and B exit 0.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { decodeTicket } from '../../src/identity/ticket.ts'
import { createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from '../../src/testing/natlab/lines.ts'
import { type Miniupnpd, startMiniupnpd } from '../../src/testing/natlab/miniupnpd.ts'
import { eventually } from '../support/eventually.ts'
import { labSkip } from '../support/lab.ts'

const MAIN = resolve('src/cli/main.ts')
const SERVE = resolve('test/relay/fixtures/lab-node.ts')
const DIAL = resolve('test/lab/fixtures/portmap-dial.ts')
const MIB = 1024 * 1024

/** Whether multiaddr `a` is `base`, with or without a peer id after it. */
const isAt = (a: string, base: string): boolean => a === base || a.startsWith(`${base}/`)

interface Proc {
  child: ChildProcess
  chan: LineChannel
  stderr: string[]
}

function proc(lab: Lab, host: string, script: string, args: string[]): Proc {
  const child = lab.spawnNode(host, script, args)
  const stderr: string[] = []
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  return { child, chan: lineChannel(child.stdout!, child.stdin!, host), stderr }
}

async function expect(p: Proc, type: string, timeoutMs: number): Promise<LineMessage> {
  const got = await p.chan.next([type, 'error'], timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.stderr.join('')}`)
  })
  if (got.type === 'error') throw new Error(`${String(got.message)}\n${p.stderr.join('')}`)
  return got
}

describe('a peer dials the mapped address first', { skip: labSkip }, () => {
  let lab: Lab
  let upnp: Miniupnpd | undefined
  let dir = ''
  const procs: Proc[] = []

  before(async () => {
    lab = await createLab({ natA: 'symmetric', natB: 'symmetric', publicHosts: ['relay'] })
    upnp = await startMiniupnpd(lab, 'rb')
    dir = await mkdtemp(join(tmpdir(), 'warren-portmap-dial-'))
  })

  after(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
    await upnp?.stop()
    await lab?.close()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it("A's first connection to B goes to B's mapped TCP address, 1 MiB intact over it", async (t) => {
    const bKey = await generateNodeKey()
    await saveNodeKey(join(dir, 'key'), bKey)
    const bId = peerIdFromPrivateKey(bKey).toString()
    const relay = proc(lab, 'relay', MAIN, [
      ...['--home', join(dir, 'relay'), 'relay', '--json', '--listen', '/ip4/0.0.0.0/tcp/4001', '--allow', bId],
    ])
    procs.push(relay)
    const id = (JSON.parse(String((await expect(relay, 'text', 45_000)).text)) as { id: string }).id
    const relayAddr = `/ip4/${lab.address('relay')}/tcp/4001/p2p/${id}`
    const b = proc(lab, 'b', SERVE, ['serve', join(dir, 'key'), relayAddr])
    procs.push(b)
    await expect(b, 'ready', 45_000)
    const tcp = await eventually(
      'rb maps a TCP port for b',
      async () => (await upnp!.mappings()).find((m) => m.startsWith('tcp ')),
      20_000,
    )
    const [, host, port] = /^tcp ([\d.]+):(\d+) /.exec(tcp) ?? []
    const mapped = `/ip4/${host}/tcp/${port}`
    let seen: string[] = []
    const ticket = await eventually(
      'the ticket carries the mapped address',
      async () => {
        b.chan.send({ type: 'identity' })
        const tk = String((await expect(b, 'identity', 10_000)).ticket)
        seen = decodeTicket(tk).addrs.map(String)
        return seen.some((a) => isAt(a, mapped)) && tk
      },
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${mapped} not in ${seen.join(' ')}`)
    })
    const a = proc(lab, 'a', DIAL, [relayAddr])
    procs.push(a)
    a.chan.send({ type: 'dial', ticket })
    const got = await expect(a, 'dialled', 60_000)
    t.diagnostic(`mapped ${mapped}; first ${String(got.first)}; conns ${JSON.stringify(got.conns)}`)
    assert.equal(got.answer, `${MIB} ${String(got.sha256)}`, 'B received every byte A sent, SHA-256 equal')
    assert.ok(isAt(String(got.first), mapped), `connect returned ${String(got.first)}, not ${mapped}`)
    const conns = got.conns as { addr: string }[]
    assert.ok(isAt(conns[0]!.addr, mapped), `the oldest connection: ${JSON.stringify(conns)}`)
    assert.ok(!conns.some((c) => c.addr.includes('/p2p-circuit')), `no relayed connection: ${JSON.stringify(conns)}`)
    a.chan.send({ type: 'finish' })
    b.chan.send({ type: 'finish' })
    await Promise.all([reap(a.child, 20_000), reap(b.child, 20_000)])
    assert.equal(a.child.exitCode, 0, a.stderr.join(''))
    assert.equal(b.child.exitCode, 0, b.stderr.join(''))
  })
})
