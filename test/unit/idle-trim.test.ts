/**
 * The idle trim after a burst: a compacting major collection of the V8 heap, then `malloc_trim(0)`, on the quiet
 * intervals after a busy one, whether or not anyone listens (`onTrim`). The memory checks are behaviour checks with
 * wide margins (tens of MiB given back of 48 allocated), never timings.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { runInNewContext } from 'node:vm'
import { describeTrim, type Gc, startIdleTrim, type TrimReport, v8Gc } from '../../src/daemon/idle-trim.ts'
import { eventually } from '../support/eventually.ts'

const MiB = 1024 * 1024

/** Keeps the CPU busy for `ms`: the burst the trimmer waits for. */
function spin(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {}
}

/** Resident bytes of glibc's main heap (`[heap]` in /proc/self/smaps). */
function heapRss(): number {
  let inHeap = false
  let total = 0
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head !== null) inHeap = head[1]!.trim() === '[heap]'
    else if (inHeap) {
      const m = /^Rss:\s+(\d+) kB/.exec(line)
      if (m !== null) total += Number(m[1]) * 1024
    }
  }
  return total
}

/** Short intervals so that a test sees a busy tick and quiet ones within a second. */
const FAST = { intervalMs: 100, busyShare: 0.3, quietShare: 0.2 }

describe('startIdleTrim', { skip: process.platform === 'linux' ? false : 'glibc on Linux only' }, () => {
  it('compacts the V8 heap (last-resort major collection) before each trim', async () => {
    const events: string[] = []
    const gc: Gc = (opts) => events.push(`gc ${opts?.type} ${opts?.execution} ${opts?.flavor}`)
    const t = startIdleTrim({ ...FAST, quietTicks: 2, compact: gc, onTrim: () => events.push('trim') })
    try {
      spin(150)
      await eventually(() => events.length === 4 || undefined, {
        timeoutMs: 5_000,
        message: 'two compactions and trims',
      })
      assert.deepEqual(events, ['gc major sync last-resort', 'trim', 'gc major sync last-resort', 'trim'])
    } finally {
      t.stop()
    }
  })

  it('reports each trim: resident memory before and after, whether the heap was compacted, the time taken', async () => {
    const reports: TrimReport[] = []
    const t = startIdleTrim({ ...FAST, quietTicks: 1, compact: () => {}, onTrim: (_r, report) => reports.push(report) })
    try {
      spin(150)
      await eventually(() => reports.length === 1 || undefined, { timeoutMs: 5_000, message: 'one trim' })
      const [r] = reports
      assert.equal(r!.compacted, true)
      for (const v of [r!.rssBefore, r!.rssAfter]) assert.ok(Number.isInteger(v) && v > 10 * MiB, `rss ${v}`)
      assert.ok(r!.ms >= 0 && r!.ms < 5_000, `ms ${r!.ms}`)
    } finally {
      t.stop()
    }
  })

  it('afterStart: trims at the first quiet step after start-up, without a burst first; stop() before it leaves nothing to run', async () => {
    const events: string[] = []
    const gc: Gc = () => events.push('gc')
    const t = startIdleTrim({
      ...FAST,
      afterStart: true,
      firstMs: 30,
      quietTicks: 1,
      compact: gc,
      onTrim: () => events.push('trim'),
    })
    try {
      await eventually(() => events.length >= 2 || undefined, { timeoutMs: 5_000, message: 'the trim after start-up' })
      assert.deepEqual(events.slice(0, 2), ['gc', 'trim'])
    } finally {
      t.stop()
    }
    const stopped: string[] = []
    startIdleTrim({ ...FAST, afterStart: true, firstMs: 30, compact: () => stopped.push('gc') }).stop()
    await new Promise((r) => setTimeout(r, 150))
    assert.deepEqual(stopped, [])
  })

  it('without afterStart, an idle process is never trimmed', async () => {
    const events: string[] = []
    const t = startIdleTrim({ ...FAST, compact: () => events.push('gc') })
    await new Promise((r) => setTimeout(r, 350))
    t.stop()
    assert.deepEqual(events, [])
  })

  it('describes a trim for the log', () => {
    assert.equal(
      describeTrim({ rssBefore: 110.25 * MiB, rssAfter: 58 * MiB, compacted: true, ms: 212.4 }),
      'idle: heap compacted and free memory handed back in 212 ms, resident 110.3 → 58.0 MiB',
    )
    assert.equal(
      describeTrim({ rssBefore: 80 * MiB, rssAfter: 80 * MiB, compacted: false, ms: 3 }),
      'idle: free memory handed back in 3 ms, resident 80.0 → 80.0 MiB',
    )
  })

  it('after a burst, dead Buffers of the old generation are collected and their memory leaves the process (no onTrim)', async () => {
    const t = startIdleTrim({ ...FAST, quietTicks: 1_000_000, compact: true })
    try {
      // 48 MiB of 96 KiB backing stores (below glibc's mmap threshold: they come from its main heap), written so
      // that they are resident, with a small live allocation after each 32 of them so that freeing them cannot
      // shrink the heap from its top
      let chunks: Buffer[] = []
      const pins: Buffer[] = []
      for (let i = 0; i < 512; i++) {
        chunks.push(Buffer.allocUnsafeSlow(96 * 1024).fill(i & 0xff))
        if (i % 32 === 31) pins.push(Buffer.allocUnsafeSlow(512).fill(1))
      }
      // two young-generation collections move the Buffers to the old generation, which only a major one clears
      v8Gc()?.({ type: 'minor' })
      v8Gc()?.({ type: 'minor' })
      const before = heapRss()
      assert.ok(before > 40 * MiB, `the buffers are resident in [heap]: ${(before / MiB).toFixed(1)} MiB`)
      assert.ok(process.memoryUsage().arrayBuffers > 40 * MiB)
      chunks = []
      spin(150)
      await eventually(
        () => {
          const now = heapRss()
          return now < before - 32 * MiB || undefined
        },
        { timeoutMs: 10_000, message: `[heap] below ${((before - 32 * MiB) / MiB).toFixed(1)} MiB` },
      )
      // the compaction freed the dead Buffers, which no young-generation collection reaches
      assert.ok(process.memoryUsage().arrayBuffers < 16 * MiB, `${process.memoryUsage().arrayBuffers} bytes left`)
      assert.equal(pins.length, 16)
    } finally {
      t.stop()
    }
  })
})

describe('v8Gc', () => {
  it('gives V8’s gc without --expose-gc and leaves no gc in this or new contexts', () => {
    const gc = v8Gc()
    assert.equal(typeof gc, 'function')
    gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    assert.equal(v8Gc(), gc, 'the same function each time')
    assert.equal((globalThis as { gc?: unknown }).gc, undefined)
    assert.equal(runInNewContext('typeof gc'), 'undefined')
  })
})
