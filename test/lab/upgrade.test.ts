import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runUpgradeSpike } from '../../src/testing/natlab/upgrade-run.ts'
import { labSkip, useRelayLab } from '../support/lab.ts'

const MiB = 1024 * 1024

describe('direct-path upgrade over a Warren relay through cone x cone NATs', { skip: labSkip }, () => {
  const env = useRelayLab('cone', 'cone')

  it('upgrades the relayed connection to a direct udx one that carries 32 MiB intact, router to router', async () => {
    const { lab, relayAddr } = env()
    const r = await runUpgradeSpike(lab, { bytes: 32 * MiB, yamuxWindow: 2 * MiB, relayAddr })
    assert.equal(r.failure, undefined)
    assert.equal(r.plan, 'simultaneous')
    assert.match(r.path ?? '', /^\/ip4\/198\.18\.0\.3\/udp\/\d+\/p2p\//)
    assert.equal(r.checksumOk, true)
    assert.ok(r.peerUdpBytes >= 32 * MiB, `ra forwarded ${r.peerUdpBytes} UDP bytes to/from rb`)
    assert.ok(r.relayBytes < MiB, `only signalling crossed the relay: ${r.relayBytes} bytes`)
    assert.equal(r.direct, true)
    assert.equal(r.signallingOpen, true)
    assert.ok(r.upgradeMs! < 1000, `upgrade took ${r.upgradeMs} ms`)
    console.log(
      `upgrade over relay, cone x cone: direct in ${r.upgradeMs!.toFixed(1)} ms, ${r.mibps!.toFixed(1)} MiB/s`,
    )
  })
})

describe('direct-path upgrade over a Warren relay between two symmetric NATs', { skip: labSkip }, () => {
  const env = useRelayLab('symmetric', 'symmetric')

  it('fails fast with a clear reason; the relayed connection stays and carries 8 MiB intact', async () => {
    const { lab, relayAddr } = env()
    const started = performance.now()
    const r = await runUpgradeSpike(lab, { bytes: 8 * MiB, relayAddr })
    assert.match(
      r.failure ?? '',
      /^no direct path to 12D3KooW\w+: no direct UDP path to 198\.18\.0\.3 after \d+ probes in 2000 ms$/,
    )
    assert.equal(r.direct, false)
    assert.match(r.path ?? '', /^\/ip4\/198\.18\.0\.1\/tcp\/4001\/p2p\/12D3KooW\w+\/p2p-circuit\/p2p\//)
    assert.equal(r.checksumOk, true)
    assert.ok(r.relayBytes >= 8 * MiB, `ra forwarded ${r.relayBytes} bytes to/from the relay`)
    assert.ok(r.peerUdpBytes < 64 * 1024, `only probes went router to router: ${r.peerUdpBytes} bytes`)
    assert.equal(r.relayed, true)
    assert.equal(r.signallingOpen, true)
    assert.ok(performance.now() - started < 20_000)
  })
})
