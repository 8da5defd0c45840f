import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runUpgradeSpike, SIGNAL_PORT } from '../../src/testing/natlab/upgrade-spike.ts'
import { labSkip, useLab } from './use-lab.ts'

describe('direct-path upgrade (/warren/punch/1.0.0) through cone x cone NATs', { skip: labSkip }, () => {
  const lab = useLab('cone', 'cone', { forwardTcpToB: [SIGNAL_PORT] })

  it('upgrades a TCP signalling connection to a direct udx connection that carries 32 MiB intact', async () => {
    const r = await runUpgradeSpike(lab(), { bytes: 32 * 1024 * 1024, yamuxWindow: 16 * 1024 * 1024 })
    assert.equal(r.failure, undefined)
    assert.equal(r.plan, 'simultaneous')
    assert.match(r.path ?? '', /^\/ip4\/198\.18\.0\.3\/udp\/\d+\/p2p\//)
    assert.equal(r.checksumOk, true)
    assert.ok(r.peerUdpBytes >= 32 * 1024 * 1024, `ra forwarded ${r.peerUdpBytes} UDP bytes to/from rb`)
    assert.equal(r.direct, true)
    assert.equal(r.signallingOpen, true)
    assert.ok(r.upgradeMs! < 1000, `upgrade took ${r.upgradeMs} ms`)
    console.log(`upgrade cone x cone: direct in ${r.upgradeMs!.toFixed(1)} ms, ${r.mibps!.toFixed(1)} MiB/s`)
  })
})

describe('direct-path upgrade between two symmetric NATs', { skip: labSkip }, () => {
  const lab = useLab('symmetric', 'symmetric', { forwardTcpToB: [SIGNAL_PORT] })

  it('fails fast with a clear reason and leaves the signalling connection open', async () => {
    const started = performance.now()
    const r = await runUpgradeSpike(lab(), { bytes: 1024 })
    assert.equal(r.direct, false)
    assert.match(
      r.failure ?? '',
      /^no direct path to 12D3KooW\w+: no direct UDP path to 198\.18\.0\.3 after \d+ probes in 2000 ms$/,
    )
    assert.equal(r.signallingOpen, true)
    assert.ok(performance.now() - started < 10_000)
  })
})
