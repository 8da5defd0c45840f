/**
 * One host must not hold every handshake slot of a listener. libp2p takes a bounded number of inbound connections in
 * their handshake at once (256 on a relay) and refuses every other one until one finishes or times out after 10 s;
 * a host that opened that many TCP connections and sent nothing shut every other node out. The relay now lets one
 * IP address hold 16 of them (src/p2p/pending-gate.ts): a host flooding it with 300 silent connections keeps 16, and
 * a node elsewhere still connects.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type LineChannel, lineChannel, reap } from '../../src/testing/natlab/lines.ts'
import { labSkip, useRelayLab } from '../support/lab.ts'

const FLOOD = fileURLToPath(new URL('./fixtures/handshake-flood.ts', import.meta.url))

describe('a host flooding a relay with silent connections (relay on the public segment)', { skip: labSkip }, () => {
  const get = useRelayLab('none', 'none')
  const children: ChildProcess[] = []
  after(async () => {
    await Promise.all(children.map((c) => reap(c, 2_000)))
  })

  const run = (host: string, args: string[]): { child: ChildProcess; chan: LineChannel } => {
    const child = get().lab.spawnNode(host, FLOOD, args)
    children.push(child)
    return { child, chan: lineChannel(child.stdout!, child.stdin!, `${args[0]} on ${host}`) }
  }
  const dial = async (host: string): Promise<{ ok: boolean; message?: string }> => {
    const { chan } = run(host, ['dial', get().relayAddr])
    return (await chan.next(['dialled', 'error'], 20_000)) as unknown as { ok: boolean; message?: string }
  }

  it('keeps 16 of 300 silent connections from one host; a node behind the other router still connects', async () => {
    const { lab } = get()
    const flood = run('a', ['hold', lab.address('relay'), '4001', '300'])
    const held = await flood.chan.next(['held', 'error'], 20_000)
    assert.equal(held.type, 'held', JSON.stringify(held))
    assert.equal(held.open, 16, 'the relay keeps 16 handshakes from one address, and closes the others at once')

    const other = await dial('b')
    assert.equal(other.ok, true, `a node behind rb could not connect: ${other.message}`)
    const same = await dial('a')
    assert.equal(same.ok, false, 'a 17th handshake from the flooding address was taken')

    flood.child.stdin!.end() // the flood ends: its connections close, and its address may connect again
    await reap(flood.child, 5_000)
    const after = await dial('a')
    assert.equal(after.ok, true, `the flooding host could not connect once it stopped: ${after.message}`)
  })
})
