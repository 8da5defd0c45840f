/**
 * Port mapping over the life of a node pair in the NAT lab (symmetric × symmetric, miniupnpd on both routers): the
 * path goes direct through the mapped port; a router reboot (miniupnpd restarted with an empty lease file, its rules
 * and the router's conntrack table gone) loses the mapping, the node maps again (the mapper's check notices within a
 * quarter of the lifetime, 20 s here) and the direct path carries bytes again (the reboot can break the direct
 * connection itself, and then a re-punch brings one back: the transfer waits, bounded, for a direct path that answers
 * a ping); the same after a reboot that keeps the port mapper silent for 8 s, past a check and a renewal; the
 * mappings stay renewed all along (each lives 20 s, the file runs longer); when the nodes stop, they delete their
 * mappings and miniupnpd's list is empty. Transfers are checked by
 * SHA-256 and by the routers' counters; a failure carries both routers' miniupnpd logs and both nodes' logs.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { decodeTicket } from '../../src/identity/ticket.ts'
import { type Counter, createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from '../../src/testing/natlab/lines.ts'
import { type Miniupnpd, startMiniupnpd } from '../../src/testing/natlab/miniupnpd.ts'
import { eventually } from '../support/eventually.ts'
import { labSkip } from '../support/lab.ts'

const MAIN = resolve('src/cli/main.ts')
const NODE = resolve('test/relay/fixtures/lab-node.ts')
const BYTES = 16 * 1024 * 1024
/** Lifetime the nodes ask for, s: renewals every 10 s, checks every 5 s. */
const LIFETIME_S = 20

interface Proc {
  child: ChildProcess
  chan: LineChannel
  stderr: string[]
  /** Resolves once the process ended and its output was read to the end. */
  closed: Promise<void>
}

function proc(lab: Lab, host: string, script: string, args: string[]): Proc {
  const env = { ...process.env, WARREN_LAB_PORTMAP_LIFETIME: String(LIFETIME_S) }
  const child = lab.spawnNode(host, script, args, { env })
  const stderr: string[] = []
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  return { child, chan: lineChannel(child.stdout!, child.stdin!, `${host}`), stderr, closed }
}

/** How a process ended, for a failure message. */
function ending(p: Proc): string {
  const { exitCode, signalCode } = p.child
  return exitCode !== null ? `exit code ${exitCode}` : signalCode !== null ? `killed by ${signalCode}` : 'still running'
}

async function expect(p: Proc, type: string, timeoutMs: number): Promise<LineMessage> {
  const got = await p.chan.next([type, 'error'], timeoutMs).catch(async (err: Error) => {
    // when the process ended, what it wrote last to stderr may still be on its way
    await Promise.race([p.closed, new Promise((r) => setTimeout(r, 3000).unref())])
    // an error it reported may have gone to the error waiter of an earlier call, whose race was already over
    const errors = p.chan.log.filter((m) => m.type === 'error').map((m) => `reported: ${String(m.message)}`)
    throw new Error([`${err.message} (${ending(p)})`, ...errors, p.stderr.join('')].join('\n'))
  })
  if (got.type === 'error') throw new Error(`${String(got.message)}\n${p.stderr.join('')}`)
  return got
}

const directOf = (c: { ra: Record<string, Counter>; rb: Record<string, Counter> }): number =>
  ['out_peer', 'in_peer'].reduce((n, k) => n + (c.ra[k]?.bytes ?? 0) + (c.rb[k]?.bytes ?? 0), 0)

describe('port mapping across a router reboot and the node stopping', { skip: labSkip }, () => {
  let lab: Lab
  const homes: string[] = []
  let upnp: { ra: Miniupnpd; rb: Miniupnpd }
  let a: Proc
  let b: Proc

  before(async () => {
    lab = await createLab({ natA: 'symmetric', natB: 'symmetric', publicHosts: ['relay'] })
    const [ra, rb] = await Promise.all([startMiniupnpd(lab, 'ra'), startMiniupnpd(lab, 'rb')])
    upnp = { ra, rb }
    const dir = await mkdtemp(join(tmpdir(), 'warren-portmap-'))
    homes.push(dir)
    const bKey = await generateNodeKey()
    await saveNodeKey(join(dir, 'key'), bKey)
    const bId = peerIdFromPrivateKey(bKey).toString()
    const relay = proc(lab, 'relay', MAIN, [
      ...['--home', join(dir, 'relay'), 'relay', '--json', '--listen', '/ip4/0.0.0.0/tcp/4001', '--allow', bId],
    ])
    const id = (JSON.parse(String((await expect(relay, 'text', 45_000)).text)) as { id: string }).id
    const relayAddr = `/ip4/${lab.address('relay')}/tcp/4001/p2p/${id}`
    b = proc(lab, 'b', NODE, ['serve', join(dir, 'key'), relayAddr])
    const ready = await expect(b, 'ready', 45_000)
    a = proc(lab, 'a', NODE, ['send', relayAddr])
    a.chan.send({ type: 'send', ticket: String(ready.ticket), waitDirectMs: 12_000, pings: 0 })
    await expect(a, 'settled', 60_000)
  })

  after(async () => {
    await Promise.all([upnp?.ra.stop(), upnp?.rb.stop()])
    await lab?.close()
    await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })))
  })

  const counters = async (): Promise<{ ra: Record<string, Counter>; rb: Record<string, Counter> }> => ({
    ra: await lab.counters('ra'),
    rb: await lab.counters('rb'),
  })

  /** Runs a test's body; its failure carries what both routers' miniupnpd and both nodes logged. */
  async function withRouterLogs(body: () => Promise<void>): Promise<void> {
    try {
      await body()
    } catch (err) {
      const logs = { 'miniupnpd on ra': upnp.ra.log(), 'miniupnpd on rb': upnp.rb.log() }
      const nodes = { [`node a (${ending(a)})`]: a.stderr.join(''), [`node b (${ending(b)})`]: b.stderr.join('') }
      const text = Object.entries({ ...logs, ...nodes }).map(([who, log]) => `${who}:\n${log}`)
      throw new Error([(err as Error).message, ...text].join('\n'), { cause: err })
    }
  }

  /** One transfer on the path new streams take: intact, and how many bytes went router ↔ router. */
  async function send(): Promise<{ leg: LineMessage; direct: number }> {
    const before = directOf(await counters())
    a.chan.send({ type: 'go', over: 'best', bytes: BYTES })
    const leg = await expect(a, 'leg', 90_000)
    assert.equal(leg.answer, `${BYTES} ${String(leg.sha256)}`, 'B received every byte A sent, SHA-256 equal')
    return { leg, direct: directOf(await counters()) - before }
  }

  it('goes direct through the mapped ports', (t) =>
    withRouterLogs(async () => {
      assert.ok(
        (await upnp.rb.mappings()).some((m) => m.startsWith('tcp ')),
        'rb maps a TCP port for b',
      )
      const { leg, direct } = await send()
      t.diagnostic(`path ${JSON.stringify(leg.path)}; router↔router ${direct} B`)
      assert.equal((leg.path as { kind: string }).kind, 'direct')
      assert.ok(direct >= BYTES, `only ${direct} bytes went router ↔ router`)
    }))

  it('announces the mapped address in its ticket, before any relay address', async () => {
    const [tcp] = (await upnp.rb.mappings()).filter((m) => m.startsWith('tcp '))
    assert.ok(tcp !== undefined, 'rb maps a TCP port for b')
    b.chan.send({ type: 'identity' })
    const addrs = decodeTicket(String((await expect(b, 'identity', 10_000)).ticket)).addrs.map(String)
    const [, host, port] = /^tcp ([\d.]+):(\d+) /.exec(tcp) ?? []
    const mapped = `/ip4/${host}/tcp/${port}`
    const at = addrs.findIndex((a) => a.startsWith(`${mapped}/`) || a === mapped)
    assert.ok(at >= 0, `the ticket carries ${mapped}: ${addrs.join(' ')}`)
    const firstRelayed = addrs.findIndex((a) => a.includes('/p2p-circuit'))
    assert.ok(firstRelayed === -1 || at < firstRelayed, `dialled before the relay: ${addrs.join(' ')}`)
  })

  /**
   * Reboots rb (its port mapper down for `downMs`), then waits for b's mappings and for a direct path from a that
   * answers, and sends over it.
   */
  async function rebootAndBack(t: TestContext, downMs: number): Promise<void> {
    const started = Date.now()
    await upnp.rb.restart(downMs)
    if (downMs === 0) assert.deepEqual(await upnp.rb.mappings(), [], 'the reboot lost the mappings')
    // a node whose renewal went unanswered probes again at once, and 30 s after a probe that found nothing
    const again = await eventually(
      'b maps its ports again',
      async () => {
        const list = await upnp.rb.mappings()
        return list.length >= 2 && list
      },
      50_000,
    )
    t.diagnostic(`mapped again after ${Date.now() - started} ms: ${again.join(', ')}`)
    // the reboot also dropped the router's state of the direct connection: when b spoke first on it (say an address
    // update after its relay connection, which the reboot broke too), the router gave b's packets a new port and
    // the connection is gone; a re-punch through the new mapping brings a direct path back
    const checks: string[] = []
    const path = await eventually(
      'a direct path from a to b that answers a ping',
      async () => {
        a.chan.send({ type: 'go', over: 'path' })
        const now = await expect(a, 'path', 10_000)
        checks.push(JSON.stringify(now))
        return (now.path as { kind?: string } | null)?.kind === 'direct' && now.answered === true && now
      },
      4 * LIFETIME_S * 1000,
    ).catch((err: Error) => {
      throw new Error(
        [err.message, 'what a saw, first and last:', ...checks.slice(0, 2), ...checks.slice(-2)].join('\n'),
      )
    })
    t.diagnostic(`direct path answering after ${Date.now() - started} ms: ${JSON.stringify(path.path)}`)
    const { leg, direct } = await send()
    t.diagnostic(`path ${JSON.stringify(leg.path)}; router↔router ${direct} B; back after ${Date.now() - started} ms`)
    assert.equal((leg.path as { kind: string }).kind, 'direct')
    assert.ok(direct >= BYTES, `only ${direct} bytes went router ↔ router`)
  }

  it('maps again after a router reboot, and the direct path carries bytes again', (t) =>
    withRouterLogs(() => rebootAndBack(t, 0)))

  it('maps again after a reboot that keeps the router silent past a check (8 s), and goes direct again', (t) =>
    withRouterLogs(() => rebootAndBack(t, 8000)))

  it('deletes its mappings when the node stops', () =>
    withRouterLogs(async () => {
      assert.ok((await upnp.ra.mappings()).length > 0, 'ra holds a mapping for a')
      a.chan.send({ type: 'go', over: 'end' })
      a.chan.send({ type: 'finish' })
      b.chan.send({ type: 'finish' })
      await Promise.all([reap(a.child, 20_000), reap(b.child, 20_000)])
      assert.equal(a.child.exitCode, 0, a.stderr.join(''))
      assert.equal(b.child.exitCode, 0, b.stderr.join(''))
      assert.deepEqual(await upnp.ra.mappings(), [], "ra's miniupnpd list is empty")
      assert.deepEqual(await upnp.rb.mappings(), [], "rb's miniupnpd list is empty")
    }))
})
