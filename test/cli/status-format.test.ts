import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { printable } from '../../src/cli/common.ts'
import { formatForwards, formatUpgrade } from '../../src/cli/status.ts'
import type { ForwardInfo } from '../../src/node/types.ts'

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

describe('warren status and warren forward --list: each forward with its counts, last error and check', () => {
  const at = 10_000_000
  const base = { node: 'laptop', service: 'db', active: 0, total: 0, failed: 0 }
  it('one line for a forward that never failed; "not checked" and "checking" when so', () => {
    const list: ForwardInfo[] = [
      { ...base, listen: '127.0.0.1:5432', active: 2, total: 7, check: { state: 'ok', at } },
      { ...base, listen: '127.0.0.1:80', service: 'web', check: { state: 'skipped' } },
      { ...base, listen: '[::1]:8080', service: 'web', check: { state: 'running' } },
    ]
    assert.deepEqual(formatForwards(list, '  ', at), [
      '  127.0.0.1:5432  → laptop/db  2 open, 7 served, 0 failed',
      '  127.0.0.1:80    → laptop/web  0 open, 0 served, 0 failed, not checked',
      '  [::1]:8080      → laptop/web  0 open, 0 served, 0 failed, checking',
    ])
  })

  it('the latest failed connection and a failed check, each on a line of its own under the forward', () => {
    const message = 'node 12D3KooWPeer has no service "db"'
    const lastError = { at: at - 65_000, code: 'ERR_UNKNOWN_SERVICE' as const, message }
    const dial = { at: at - 3_000, code: 'ERR_DIAL_FAILED' as const, message: 'could not connect to node 12D3KooWPeer' }
    const list: ForwardInfo[] = [
      { ...base, listen: '127.0.0.1:5432', total: 3, failed: 1, lastError, check: { state: 'ok', at } },
      {
        ...base,
        listen: '127.0.0.1:6000',
        total: 1,
        failed: 1,
        lastError: dial,
        check: { state: 'failed', at: dial.at, error: dial },
      },
    ]
    assert.deepEqual(formatForwards(list, '', at), [
      '127.0.0.1:5432  → laptop/db  0 open, 3 served, 1 failed',
      `                  last error 1m 5s ago: ${message} (ERR_UNKNOWN_SERVICE)`,
      '127.0.0.1:6000  → laptop/db  0 open, 1 served, 1 failed',
      '                  last error 3s ago: could not connect to node 12D3KooWPeer (ERR_DIAL_FAILED)',
      '                  check failed 3s ago: could not connect to node 12D3KooWPeer (ERR_DIAL_FAILED)',
    ])
  })

  it('nothing for no forwards', () => {
    assert.deepEqual(formatForwards([], '  ', at), [])
  })
})

describe('what the CLI prints for people', () => {
  it('escapes every control character but line breaks: a relay or node cannot drive the terminal', () => {
    const reason = 'refused\x1b]0;owned\x07\r\x9b2J\u202eok'
    assert.equal(
      printable(`relay r: ${reason}\nnext line`),
      'relay r: refused\\x1b]0;owned\\x07\\r\\x9b2J\\u202eok\nnext line',
    )
    assert.equal(printable('plain text\n  indented'), 'plain text\n  indented')
  })
})
