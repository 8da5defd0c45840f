/**
 * The descriptor budget (src/open-files.ts): local connections admitted while the reserve and the peer connections'
 * descriptors stay free under the open-file limit, given back once, the peer connections counted only near the
 * limit, the limit read again there, and the words of a refusal and of the start-up warning.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  DESCRIPTOR_RESERVE,
  DescriptorBudget,
  descriptorShortfall,
  openFilesLimit,
  processDescriptors,
} from '../../src/open-files.ts'

describe('DescriptorBudget', () => {
  it('admits up to the limit less the reserve, and a release gives one back, once', () => {
    const b = new DescriptorBudget({ limit: 10, reserve: 4 })
    const held = Array.from({ length: 6 }, () => b.take())
    assert.ok(held.every((r) => typeof r === 'function'))
    assert.equal(b.held, 6)
    assert.equal(b.take(), undefined)
    held[0]!()
    held[0]!()
    assert.equal(b.held, 5, 'a second release of the same one changes nothing')
    assert.equal(typeof b.take(), 'function')
    assert.equal(b.take(), undefined)
  })

  it('counts the other parts only near the limit, and at most their maximum', () => {
    const b = new DescriptorBudget({ limit: 100, reserve: 10 })
    let asked = 0
    let peers = 3
    b.countOthers(() => {
      asked++
      return peers
    }, 50)
    for (let i = 0; i < 40; i++) assert.ok(b.take())
    assert.equal(asked, 0, 'far from the limit (40 + 10 + 50 < 100) nothing is asked')
    for (let i = 0; i < 47; i++) assert.ok(b.take())
    assert.ok(asked > 0)
    assert.equal(b.held, 87)
    assert.equal(b.take(), undefined, '87 + 10 + 3 = 100')
    peers = 1
    assert.ok(b.take(), 'two peer connections closed: room for two more')
    assert.ok(b.take())
    assert.equal(b.take(), undefined)
    const stop = b.countOthers(() => 0, 0)
    stop()
    stop()
    assert.equal(b.held, 89)
  })

  it('stops counting a part that is removed', () => {
    const b = new DescriptorBudget({ limit: 20, reserve: 5 })
    const stop = b.countOthers(() => 10, 10)
    for (let i = 0; i < 5; i++) assert.ok(b.take())
    assert.equal(b.take(), undefined)
    stop()
    for (let i = 0; i < 10; i++) assert.ok(b.take())
    assert.equal(b.take(), undefined)
  })

  it('reads the limit again near it, at most once a second', async () => {
    let limit = 10
    let reads = 0
    const b = new DescriptorBudget({
      limit,
      reserve: 2,
      reread: () => {
        reads++
        return limit
      },
    })
    for (let i = 0; i < 8; i++) assert.ok(b.take())
    limit = 12 // `prlimit --pid` on the running process
    assert.equal(b.take(), undefined, 'read less than a second ago')
    await new Promise((r) => setTimeout(r, 1_050))
    assert.ok(b.take())
    assert.ok(b.take())
    assert.equal(b.take(), undefined)
    assert.equal(b.limit, 12)
    assert.equal(reads, 1)
  })

  it('admits everything when the limit is unknown', () => {
    const b = new DescriptorBudget({ limit: undefined })
    for (let i = 0; i < 10_000; i++) assert.ok(b.take())
    assert.equal(b.limit, Number.POSITIVE_INFINITY)
    assert.deepEqual(b.status(), { limit: null, localConnections: 10_000, refused: 0 })
  })

  it('says why it refused', () => {
    const b = new DescriptorBudget({ limit: 1024 })
    for (let i = 0; i < 1024 - DESCRIPTOR_RESERVE; i++) b.take()
    assert.equal(b.take(), undefined)
    assert.equal(b.take(), undefined)
    assert.deepEqual(b.status(), { limit: 1024, localConnections: 896, refused: 2 })
    assert.equal(
      b.describe(),
      "896 local connections are open, the most this process's open-file limit allows (ulimit -n 1024, less 128 " +
        "kept for the node's own use and those of its peer connections); raise the limit (ulimit -n, LimitNOFILE= " +
        'in a systemd unit) or close connections',
    )
  })
})

describe('descriptorShortfall', () => {
  it('warns when the stream limit cannot be held under the open-file limit', () => {
    assert.equal(
      descriptorShortfall(4096, 1024, 'limits.maxStreams'),
      'limits.maxStreams is 4096 but this process may open only 1024 files (ulimit -n): local connections past ' +
        'about 896 will be refused; raise the limit to at least 4224 (ulimit -n, or LimitNOFILE= in a systemd unit)',
    )
  })

  it('says nothing when it can, or when the limit is unknown', () => {
    assert.equal(descriptorShortfall(4096, 4096 + DESCRIPTOR_RESERVE, 'limits.maxStreams'), undefined)
    assert.equal(descriptorShortfall(4096, undefined, 'limits.maxStreams'), undefined)
  })
})

describe('the process budget', () => {
  it('is one per process, at the limit /proc/self/limits gives', () => {
    assert.equal(processDescriptors(), processDescriptors())
    assert.equal(processDescriptors().limit, openFilesLimit() ?? Number.POSITIVE_INFINITY)
  })
})
