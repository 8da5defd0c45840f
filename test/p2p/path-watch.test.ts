/**
 * PathWatch on loopback: two UDX endpoints talk through a small UDP forwarder (two sockets on 127.0.0.1) that the test
 * can cut, which is what a NAT that forgets or changes a mapping does to a direct path: every packet is dropped,
 * nothing announces it.
 */
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { describe, it } from 'node:test'
import type { UDXStream } from 'udx-native'
import { isWarrenError } from '../../src/errors.ts'
import { onAnyUdxStream, UdxEndpoint } from '../../src/p2p/udx/endpoint.ts'
import { KEEPALIVE_MS, PathWatch } from '../../src/p2p/udx/path-watch.ts'
import { eventually } from '../support/eventually.ts'

function bind(): Promise<Socket> {
  const s = createSocket('udp4')
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)))
}

/** A → `front` → `back` → B and back again, until `cut()`. */
async function forwarder(bPort: number) {
  const [front, back] = await Promise.all([bind(), bind()])
  let aPort = 0
  let open = true
  front.on('message', (msg, from) => {
    aPort = from.port
    if (open) back.send(msg, bPort, '127.0.0.1')
  })
  back.on('message', (msg) => {
    if (open && aPort !== 0) front.send(msg, aPort, '127.0.0.1')
  })
  return {
    port: front.address().port,
    cut: () => {
      open = false
    },
    close: () => {
      front.close()
      back.close()
    },
  }
}

/** A stream from A to B through a forwarder, keepalive on both ends as UdxMultiaddrConnection sets it. */
async function pair() {
  const inbound: UDXStream[] = []
  const b = new UdxEndpoint({ host: '127.0.0.1', onInbound: (s) => inbound.push(s) })
  const a = new UdxEndpoint({ host: '127.0.0.1' })
  const fwd = await forwarder(b.address().port)
  const stream = await a.open({ host: '127.0.0.1', port: fwd.port }, { timeoutMs: 2000 })
  stream.setKeepalive(KEEPALIVE_MS)
  await eventually(() => inbound.length > 0, { timeoutMs: 1_000, intervalMs: 10, message: 'B accepts the stream' })
  assert.equal(inbound.length, 1, 'B accepted the stream')
  inbound[0]!.setKeepalive(KEEPALIVE_MS)
  for (const s of [stream, inbound[0]!]) s.on('error', () => undefined)
  return {
    a,
    stream,
    fwd,
    close: async () => {
      fwd.close()
      await Promise.all([a.close(), b.close()])
    },
  }
}

const closed = (s: UDXStream): Promise<Error | undefined> =>
  new Promise((resolve) => {
    let error: Error | undefined
    s.once('error', (e: Error) => {
      error = e
    })
    s.once('close', () => resolve(error))
  })

describe('PathWatch (loopback, real UDX streams)', () => {
  it('keeps an idle stream whose heartbeats get through, and destroys it within the silence bound once cut', async () => {
    const p = await pair()
    const silent: number[] = []
    const watch = new PathWatch(() => p.a.streams(), {
      silentMs: 2000,
      checkMs: 100,
      onSilent: (_s, ms) => silent.push(ms),
    })
    try {
      watch.start()
      const ended = closed(p.stream)
      // a fixed wait on purpose: the stream stays idle (only heartbeats and their acks) and must survive it
      await new Promise((r) => setTimeout(r, 4500))
      assert.equal(p.stream.destroying, false, 'an idle but healthy stream stays')
      assert.equal(silent.length, 0)
      const received = p.stream.packetsReceived
      assert.ok(received >= 4, `${received} packets (heartbeats, acks) in 4.5 s of idle`)
      const cutAt = performance.now()
      p.fwd.cut()
      let late: NodeJS.Timeout | undefined
      const err = await Promise.race([ended, new Promise<'late'>((r) => (late = setTimeout(() => r('late'), 6000)))])
      clearTimeout(late)
      const ms = performance.now() - cutAt
      assert.notEqual(err, 'late', 'the watch destroyed the silent stream within 6 s')
      assert.ok(isWarrenError(err, 'ERR_TIMEOUT'), `destroyed with ${String(err)}`)
      assert.match(err.message, /^no packet from 127\.0\.0\.1:\d+ on the direct path for \d+ ms$/)
      assert.match(err.hint ?? '', /NAT mapping probably changed or expired/)
      assert.equal(silent.length, 1)
      assert.ok(silent[0]! >= 2000, `silent for ${silent[0]} ms`)
      assert.ok(ms >= 1000, `destroyed ${ms.toFixed(0)} ms after the cut: not before the silence bound`)
    } finally {
      watch.stop()
      await p.close()
    }
  })

  it('does not judge silence across a check that ran late (this process was blocked): the clock restarts', async () => {
    const p = await pair()
    const watch = new PathWatch(() => p.a.streams(), { silentMs: 2000, checkMs: 500 })
    try {
      p.fwd.cut()
      // a fixed wait on purpose: packets in flight land, then no packet may come (the checks below use fake times)
      await new Promise((r) => setTimeout(r, 200))
      const t0 = performance.now()
      watch.check(t0)
      watch.check(t0 + 500)
      watch.check(t0 + 6000) // 5.5 s late: a stall, not silence
      assert.equal(p.stream.destroying, false, 'a late check does not kill the stream')
      watch.check(t0 + 6500)
      watch.check(t0 + 7000)
      assert.equal(p.stream.destroying, false, '1 s of silence since the stall is under the bound')
      watch.check(t0 + 7500)
      watch.check(t0 + 8000)
      assert.equal(p.stream.destroying, true, '2 s of silence in on-time checks: destroyed')
    } finally {
      await p.close()
    }
  })

  it('sleeps with no stream to watch, wakes when an endpoint opens one, and sleeps again once it closed', async () => {
    const endpoints: UdxEndpoint[] = []
    const watch = new PathWatch(() => endpoints.flatMap((e) => [...e.streams()]), { silentMs: 2000, checkMs: 20 })
    const unwatch = onAnyUdxStream(() => watch.wake())
    try {
      watch.start()
      assert.equal(watch.sleeping, false, 'the first round is due')
      await eventually(() => watch.sleeping || undefined, { timeoutMs: 5_000, message: 'asleep with no stream' })
      const p = await pair()
      endpoints.push(p.a)
      try {
        assert.equal(watch.sleeping, false, 'opening a stream woke the watch')
        // a fixed wait on purpose: the watch must keep sampling while the stream is there
        await new Promise((r) => setTimeout(r, 200))
        assert.equal(watch.sleeping, false, 'awake while a stream is open')
      } finally {
        await p.close()
      }
      await eventually(() => watch.sleeping || undefined, {
        timeoutMs: 5_000,
        message: 'asleep once the stream closed',
      })
    } finally {
      unwatch()
      watch.stop()
    }
  })

  it('refuses a silence bound under two heartbeat intervals', () => {
    assert.throws(() => new PathWatch(() => [], { silentMs: KEEPALIVE_MS }), /at least two keepalive intervals/)
  })
})
