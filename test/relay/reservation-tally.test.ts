/**
 * The relay's tally of held reservations (src/relay/server/reservation-tally.ts) gives the counts a full count over
 * the held reservations gives, whatever the order of reservations, renewals, removals, token admissions and reloads.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import fc from 'fast-check'
import type { ReservationLoad } from '../../src/relay/server/policy.ts'
import { ReservationTally } from '../../src/relay/server/reservation-tally.ts'

/** A policy and a store the test changes at will, and a full count over them to compare with. */
function world() {
  const allowed = new Set<string>()
  let epoch = 0
  const held = new Map<string, Multiaddr | undefined>()
  const groupOf = (addr: Multiaddr | undefined): string | undefined =>
    addr?.getComponents().find((c) => c.name === 'ip4')?.value
  const tally = new ReservationTally({ isAllowed: (n) => allowed.has(n), epoch: () => epoch, groupOf })
  const fullCount = (except: string, ip: string | undefined): ReservationLoad => {
    let boundedHeld = 0
    let same = 0
    for (const [node, addr] of held) {
      if (node === except || allowed.has(node)) continue
      boundedHeld++
      if (ip !== undefined && groupOf(addr) === ip) same++
    }
    return ip === undefined ? { boundedHeld } : { boundedHeld, sameIp: { ip, held: same } }
  }
  return {
    tally,
    fullCount,
    reserve(node: string, addr: Multiaddr | undefined) {
      // the store keeps a renewal's first address, as libp2p's does
      const kept = held.has(node) ? held.get(node) : addr
      held.set(node, kept)
      tally.set(node, kept)
    },
    remove(node: string) {
      held.delete(node)
      tally.delete(node)
    },
    clear() {
      held.clear()
      tally.clear()
    },
    admitByToken(node: string) {
      allowed.add(node)
      tally.refresh(node)
    },
    reload(allow: string[]) {
      allowed.clear()
      for (const n of allow) allowed.add(n)
      epoch++
    },
  }
}

const addr = (ip: string): Multiaddr => multiaddr(`/ip4/${ip}/tcp/4001`)

describe('reservation tally', () => {
  it('counts non-allowed reservations in total and per address, without the asking node', () => {
    const w = world()
    w.reserve('a', addr('198.18.0.1'))
    w.reserve('b', addr('198.18.0.1'))
    w.reserve('c', addr('198.18.0.2'))
    w.reserve('d', undefined)
    assert.deepEqual(w.tally.load('x', '198.18.0.1'), { boundedHeld: 4, sameIp: { ip: '198.18.0.1', held: 2 } })
    assert.deepEqual(w.tally.load('a', '198.18.0.1'), { boundedHeld: 3, sameIp: { ip: '198.18.0.1', held: 1 } })
    assert.deepEqual(w.tally.load('a', undefined), { boundedHeld: 3 })
    // a renewal takes no new slot
    w.reserve('a', addr('198.18.0.9'))
    assert.deepEqual(w.tally.load('x', '198.18.0.1'), { boundedHeld: 4, sameIp: { ip: '198.18.0.1', held: 2 } })
    w.admitByToken('b')
    assert.deepEqual(w.tally.load('x', '198.18.0.1'), { boundedHeld: 3, sameIp: { ip: '198.18.0.1', held: 1 } })
    w.reload(['c'])
    assert.deepEqual(w.tally.load('x', '198.18.0.2'), { boundedHeld: 3, sameIp: { ip: '198.18.0.2', held: 0 } })
    w.remove('a')
    w.remove('nobody')
    assert.deepEqual(w.tally.load('x', '198.18.0.1'), { boundedHeld: 2, sameIp: { ip: '198.18.0.1', held: 1 } })
    w.clear()
    assert.deepEqual(w.tally.load('x', '198.18.0.1'), { boundedHeld: 0, sameIp: { ip: '198.18.0.1', held: 0 } })
    assert.equal(w.tally.size, 0)
  })

  it('agrees with a full count after any sequence of changes', () => {
    const node = fc.constantFrom('n1', 'n2', 'n3', 'n4', 'n5', 'n6')
    const ip = fc.constantFrom('198.18.0.1', '198.18.0.2', '198.18.1.1')
    const op = fc.oneof(
      fc.record({ kind: fc.constant('reserve' as const), node, ip: fc.option(ip) }),
      fc.record({ kind: fc.constant('remove' as const), node }),
      fc.record({ kind: fc.constant('token' as const), node }),
      fc.record({ kind: fc.constant('reload' as const), allow: fc.subarray(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']) }),
      fc.record({ kind: fc.constant('clear' as const) }),
      fc.record({ kind: fc.constant('load' as const), node, ip: fc.option(ip) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const w = world()
        for (const o of ops) {
          if (o.kind === 'reserve') w.reserve(o.node, o.ip === null ? undefined : addr(o.ip))
          else if (o.kind === 'remove') w.remove(o.node)
          else if (o.kind === 'token') w.admitByToken(o.node)
          else if (o.kind === 'reload') w.reload(o.allow)
          else if (o.kind === 'clear') w.clear()
          else {
            const at = o.ip ?? undefined
            assert.deepEqual(w.tally.load(o.node, at), w.fullCount(o.node, at))
          }
        }
        for (const n of ['n1', 'n2', 'x']) {
          for (const at of [undefined, '198.18.0.1', '198.18.1.1']) {
            assert.deepEqual(w.tally.load(n, at), w.fullCount(n, at))
          }
        }
      }),
      { numRuns: 500 },
    )
  })
})
