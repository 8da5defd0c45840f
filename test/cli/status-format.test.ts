import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatUpgrade } from '../../src/cli/status.ts'

describe('warren status: the direct-path state after the path', () => {
  const at = 1_000_000
  it('says nothing for a plain direct path or no upgrade, and names punching', () => {
    assert.equal(formatUpgrade(undefined, at), '')
    assert.equal(formatUpgrade({ state: 'direct', plan: 'simultaneous', ms: 80, at }, at), '')
    assert.equal(formatUpgrade({ state: 'upgrading', at }, at), '  (punching)')
  })

  it('shows a failed first upgrade, when it is tried again, and the retry running', () => {
    const reason = 'no direct path to 12D3KooWPeer: no direct UDP path to 198.18.0.3 after 768 probes in 5000 ms'
    assert.equal(
      formatUpgrade({ state: 'relayed', reason, retryAt: at + 1000, at }, at),
      `  (${reason}; next try in 1s)`,
    )
    assert.equal(formatUpgrade({ state: 'upgrading', retry: 1, at }, at), '  (punching, try 2)')
    assert.equal(formatUpgrade({ state: 'relayed', reason, retry: 2, at }, at), `  (${reason})`)
  })

  it('shows a lost path, the re-punch running, the failure and when the next one runs', () => {
    const reason =
      'direct path lost; re-punch 1 of 6 failed: no direct UDP path to 198.18.0.3 after 240 probes in 5000 ms'
    assert.equal(
      formatUpgrade({ state: 'relayed', reason, lost: 1, attempt: 1, retryAt: at + 2000, at }, at),
      `  (${reason}; next re-punch in 2s)`,
    )
    assert.equal(
      formatUpgrade({ state: 'upgrading', attempt: 2, lost: 1, at }, at),
      '  (re-punch 2 running; the direct path was lost 1 time)',
    )
    assert.equal(
      formatUpgrade({ state: 'direct', plan: 'simultaneous', ms: 25, attempt: 2, lost: 3, at }, at),
      '  (re-punched; the direct path was lost 3 times)',
    )
    assert.equal(
      formatUpgrade(
        {
          state: 'relayed',
          reason: 'direct path lost (no packet for 3009 ms); new streams use the relay',
          lost: 1,
          at,
        },
        at,
      ),
      '  (direct path lost (no packet for 3009 ms); new streams use the relay)',
    )
  })
})
