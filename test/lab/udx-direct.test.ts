import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runUdxSpike } from '../../src/testing/natlab/udx-direct-run.ts'
import { labSkip, useLab } from '../support/lab.ts'

describe('raw udx-native direct path through cone x cone NATs', { skip: labSkip }, () => {
  const lab = useLab('cone', 'cone')

  it('punches through at once and carries 64 MiB router to router with a matching SHA-256', async () => {
    const r = await runUdxSpike(lab(), { bytes: 64 * 1024 * 1024 })
    assert.equal(r.failure, undefined)
    assert.equal(r.plan, 'simultaneous')
    assert.equal(r.checksumOk, true)
    // Router counters, not the peers' word: the bytes went ra <-> rb, none via the public hosts.
    assert.ok(r.peerBytes >= 64 * 1024 * 1024, `ra forwarded ${r.peerBytes} bytes to/from rb`)
    assert.ok(r.relayBytes < 64 * 1024, `ra forwarded ${r.relayBytes} bytes to/from the relay hosts`)
    assert.equal(r.direct, true)
    assert.ok(r.timeToDirectMs! < 1000, `time to direct ${r.timeToDirectMs} ms`)
    console.log(
      `cone x cone: direct in ${r.timeToDirectMs!.toFixed(1)} ms (STUN ${r.stunMs.toFixed(1)} ms), ${r.mibps!.toFixed(1)} MiB/s`,
    )
  })
})

describe('libp2p (Noise + Yamux) over the udx transport through cone x cone NATs', { skip: labSkip }, () => {
  const lab = useLab('cone', 'cone')

  it('punches on the transport socket, upgrades, and carries 32 MiB router to router with a matching SHA-256', async () => {
    const r = await runUdxSpike(lab(), { bytes: 32 * 1024 * 1024, mode: 'libp2p' })
    assert.equal(r.failure, undefined)
    assert.equal(r.checksumOk, true)
    assert.ok(r.peerBytes >= 32 * 1024 * 1024, `ra forwarded ${r.peerBytes} bytes to/from rb`)
    assert.ok(r.relayBytes < 64 * 1024, `ra forwarded ${r.relayBytes} bytes to/from the relay hosts`)
    assert.equal(r.direct, true)
    assert.ok(r.timeToConnectionMs! < 1000, `time to an upgraded connection ${r.timeToConnectionMs} ms`)
    console.log(
      `libp2p over udx, cone x cone: connection in ${r.timeToConnectionMs!.toFixed(1)} ms, ${r.mibps!.toFixed(1)} MiB/s`,
    )
  })
})

describe('raw udx-native between two symmetric NATs', { skip: labSkip }, () => {
  const lab = useLab('symmetric', 'symmetric')

  it('gives up within the bounded time and sends no data router to router', async () => {
    const started = performance.now()
    const r = await runUdxSpike(lab(), { bytes: 1024 * 1024 })
    assert.equal(r.direct, false)
    assert.match(r.failure ?? '', /^no direct UDP path to 198\.18\.0\.\d after \d+ probes in 2000 ms$/)
    assert.ok(performance.now() - started < 10_000)
    assert.ok(r.peerBytes < 64 * 1024, `only probes crossed: ${r.peerBytes} bytes`)
  })
})
