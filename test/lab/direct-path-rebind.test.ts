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
 * Every wait is bounded; the lab is torn down by the hooks of test/support/lab.ts in every outcome.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LineMessage } from '../../src/testing/natlab/lines.ts'
import { labSkip } from '../support/lab.ts'
import { BYTES, blockUdp, delta, MiB, mappedPort, rebind, send, useLabPair as usePair } from '../support/lab-pair.ts'

describe('a direct path after the NAT rebinds (cone × cone)', { skip: labSkip }, () => {
  const pair = usePair({ udxOnly: true })

  it('notices within seconds, keeps the relay as the working path, and punches again to a direct path at the new mapping', async (t) => {
    const { lab, a, b, bId, aId, ticket, toDirectMs } = pair()
    const first = await send(lab, a, ticket)
    assert.equal(first.path.kind, 'direct')
    assert.ok(first.direct >= BYTES, `${first.direct} bytes went router ↔ router before the rebinding`)
    const oldPort = await mappedPort(lab)
    assert.notEqual(oldPort, undefined, 'ra maps A to rb')

    const started = performance.now()
    // the relayed spell can be shorter than a poll (the re-punch takes ~20 ms) and over before the wait starts (a
    // loaded machine runs the rebinding's commands slowly): `since` counts the path changes logged from here on
    const since = Date.now()
    await rebind(lab, 20_001)
    const lost = await a.ask({ op: 'wait', id: bId, kind: 'relay', since, timeoutMs: 20_000 }, 'waited', 25_000)
    const detectMs = typeof lost.seenMs === 'number' ? lost.seenMs : performance.now() - started
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
    udxOnly: true,
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
