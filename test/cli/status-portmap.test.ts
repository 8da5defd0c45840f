/** The port-mapping lines of `warren status` and `warren netcheck` (src/cli/status-portmap.ts). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatPortMapping } from '../../src/cli/status-portmap.ts'

const NOW = 1_800_000_000_000

describe('warren status / netcheck: port mapping', () => {
  it('shows the protocol, each mapping and the lifetime left', () => {
    const lines = formatPortMapping(
      {
        state: 'mapped',
        protocol: 'pcp',
        gateway: '192.168.1.1',
        probes: { pcp: 'ok', 'nat-pmp': 'ok', upnp: 'no answer' },
        mappings: [
          {
            protocol: 'pcp',
            transport: 'tcp',
            internal: '192.168.1.20:4781',
            external: '203.0.113.7:4781',
            expiresAt: NOW + 7_140_000,
          },
          {
            protocol: 'pcp',
            transport: 'udp',
            internal: '192.168.1.20:50412',
            external: '203.0.113.7:50412',
            expiresAt: NOW + 250_000,
          },
        ],
      },
      NOW,
    )
    assert.deepEqual(lines, [
      'port mapping  pcp from 192.168.1.1',
      '  tcp 192.168.1.20:4781 → 203.0.113.7:4781  (1h 59m left)',
      '  udp 192.168.1.20:50412 → 203.0.113.7:50412  (4m 10s left)',
    ])
  })

  it("shows each protocol's outcome and how long the attempt took, against its budget", () => {
    const mapping = {
      protocol: 'pcp' as const,
      transport: 'tcp' as const,
      internal: '192.168.1.20:4781',
      external: '203.0.113.7:4781',
      expiresAt: NOW + 60_000,
    }
    const probes = { pcp: 'ok' as const, 'nat-pmp': 'not needed' as const, upnp: 'off' as const }
    const st = { gateway: '192.168.1.1', probes, attemptMs: 35, budgetMs: 2000 }
    assert.deepEqual(formatPortMapping({ ...st, state: 'mapped', protocol: 'pcp', mappings: [mapping] }, NOW), [
      'port mapping  pcp from 192.168.1.1',
      '  tcp 192.168.1.20:4781 → 203.0.113.7:4781  (1m 0s left)',
      '  pcp ok; nat-pmp not needed; upnp off (asked in 35 ms of 2000)',
    ])
    const reason = 'pcp: no answer; nat-pmp: off; upnp: off'
    assert.deepEqual(formatPortMapping({ ...st, state: 'none', mappings: [], reason, attemptMs: 1953 }, NOW), [
      `port mapping  none from 192.168.1.1: ${reason} (asked in 1953 ms of 2000)`,
    ])
  })

  it('says why there is none, off, or that it is still asking', () => {
    const reason = 'pcp: refused: the gateway refused the PCP mapping: NOT_AUTHORIZED; nat-pmp: no answer; upnp: off'
    assert.deepEqual(formatPortMapping({ state: 'none', gateway: '10.0.0.1', mappings: [], probes: {}, reason }, NOW), [
      `port mapping  none from 10.0.0.1: ${reason}`,
    ])
    assert.deepEqual(formatPortMapping(undefined), ['port mapping  off (traversal.portMapping.enabled is false)'])
    assert.deepEqual(formatPortMapping({ state: 'off', mappings: [], probes: {}, reason: 'every protocol is off' }), [
      'port mapping  off (every protocol is off)',
    ])
    assert.deepEqual(formatPortMapping({ state: 'probing', gateway: '10.0.0.1', mappings: [], probes: {} }), [
      'port mapping  asking 10.0.0.1…',
    ])
  })
})
