/**
 * `warren status` text: what the latest direct-path upgrade could not test (a relay that did not answer STUN), and each
 * relay's line with the standby reservation and when it expires.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatStatus } from '../../src/cli/status.ts'
import type { NodeStatus, PeerInfo } from '../../src/node/types.ts'
import { describeRelayEntry } from '../../src/relay/client/relay-entries.ts'
import { describeUntested } from '../../src/traversal/upgrade/untested.ts'

const at = 5_000_000
const tally = { bytesIn: 0, bytesOut: 0, open: 0, ends: {} }
const side = { total: tally, services: {}, peers: {} }
const stream = { active: 0, total: 0 }

function statusWith(peers: PeerInfo[]): NodeStatus {
  return {
    id: '12D3KooWSelf',
    idBase36: 'warrenself',
    ticket: 'warrenticket',
    addrs: [],
    version: '0.0.0',
    uptimeMs: 1000,
    services: [],
    peers,
    forwards: [],
    streams: { ...stream, incoming: stream, outgoing: stream },
    traffic: { incoming: side, outgoing: side },
  } as unknown as NodeStatus
}

const peer = (upgrade: PeerInfo['upgrade']): PeerInfo => ({
  id: '12D3KooWPeer',
  aliases: [],
  connected: true,
  path: { kind: 'direct', addr: '/ip4/198.18.0.3/tcp/4781' },
  addrs: [],
  ...(upgrade === undefined ? {} : { upgrade }),
})

describe('warren status: STUN servers the upgrade could not test', () => {
  it('names every relay that did not answer STUN after the peer path', () => {
    const untested = ["198.18.10.12:3478 (no answer within the others' time)", '198.18.10.13:3478 (timed out)']
    const text = formatStatus(statusWith([peer({ state: 'direct', plan: 'tcp', ms: 190, untested, at })]), at)
    const line = text.split('\n').find((l) => l.includes('12D3KooWPeer'))
    assert.ok(line !== undefined, text)
    assert.ok(
      line.endsWith(
        "  (untested: 198.18.10.12:3478 (no answer within the others' time), 198.18.10.13:3478 (timed out))",
      ),
      line,
    )
  })

  it('says nothing when every STUN server answered, or before any upgrade', () => {
    const text = formatStatus(statusWith([peer({ state: 'direct', plan: 'tcp', ms: 190, at }), peer(undefined)]), at)
    assert.ok(!text.includes('untested'), text)
    assert.equal(describeUntested(undefined), '')
    assert.equal(describeUntested({ untested: [] }), '')
  })
})

describe('warren status: relays', () => {
  const addr = '/ip4/198.18.10.12/tcp/4001/p2p/12D3KooWRelay'
  it('marks the standby reservation and when it expires, in minutes or seconds', () => {
    const e = { id: '12D3KooWRelay', addr, state: 'standby' as const, rttMs: 1.25, reserved: true }
    assert.equal(
      describeRelayEntry({ ...e, expiresAt: at + 1_800_000 }, at),
      'standby (reserved, expires in 30 min)  rtt 1.3 ms',
    )
    assert.equal(
      describeRelayEntry({ ...e, expiresAt: at + 45_000 }, at),
      'standby (reserved, expires in 45 s)  rtt 1.3 ms',
    )
    assert.equal(describeRelayEntry({ ...e, reserved: undefined }, at), 'standby  rtt 1.3 ms')
  })

  it('shows why a relay is unreachable, and the line in the whole status', () => {
    const error = { code: 'ERR_RELAY_UNREACHABLE', message: 'relay 12D3KooWRelay was lost: its connection closed' }
    const e = { id: '12D3KooWRelay', addr, state: 'unreachable' as const, error }
    assert.equal(describeRelayEntry(e as never, at), `unreachable  ${error.message}`)
    const st = statusWith([])
    st.relay = {
      home: '12D3KooWHome',
      relays: [
        { id: '12D3KooWHome', addr: '/ip4/198.18.10.11/tcp/4001/p2p/12D3KooWHome', state: 'home', rttMs: 0.9 },
        { id: '12D3KooWRelay', addr, state: 'standby', rttMs: 1.25, reserved: true, expiresAt: at + 600_000 },
      ],
    }
    const line = formatStatus(st, at)
      .split('\n')
      .find((l) => l.includes(addr))
    assert.ok(line?.endsWith('standby (reserved, expires in 10 min)  rtt 1.3 ms'), String(line))
  })
})
