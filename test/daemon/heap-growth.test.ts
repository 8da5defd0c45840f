/**
 * Why `warren up` runs with a fixed heap growing factor (bin/warren.js, UPSTREAM.md): after a last-resort major
 * collection at idle, V8 (Node 24) keeps the old generation's limit close to the live heap while the backing stores
 * of a transfer's Buffers count against it, and runs a major collection every few MiB of the next transfer. The same
 * transfer over Warren's stack, in a child process, with Node's heap settings and with the daemon's: the stock run
 * must show the storm (this test fails once V8 stops doing it, and the flag can go), the daemon's must not. Counts
 * of collections, not timings; every transfer is checked whole by SHA-256.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('../support/heap-growth-child.ts', import.meta.url))
const MIB = 256

function run(flags: string[]): { majors: number; bytes: number; sha256: string; sent: string } {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=2', ...flags, CHILD], {
    env: { ...process.env, MIB: String(MIB) },
    encoding: 'utf8',
    timeout: 120_000,
  })
  assert.equal(r.status, 0, `child exited ${r.status} ${r.signal ?? ''}: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    majors: number
    bytes: number
    sha256: string
    sent: string
  }
}

/**
 * Up to three runs with `flags`, until one gives what `enough` asks of its count of major collections; returns every
 * count. Each transfer must arrive whole. Counts depend on V8's speed estimates, which other processes competing for
 * the CPU (the rest of the suite) move: a single run is not a verdict either way.
 */
function runs(flags: string[], enough: (majors: number) => boolean): number[] {
  const counts: number[] = []
  for (let i = 0; i < 3; i++) {
    const r = run(flags)
    assert.equal(r.bytes, MIB * 1024 * 1024)
    assert.equal(r.sha256, r.sent)
    counts.push(r.majors)
    if (enough(r.majors)) break
  }
  return counts
}

describe('V8 heap growth after a collection at idle', () => {
  it('stock heap settings: a major collection every few MiB; the daemon’s fixed factor: a few in the whole transfer', () => {
    // seen alone: 4-5; in one CI run beside the suite, 16 once
    const fixed = runs(['--heap-growing-percent=200'], (n) => n <= 8)
    const least = Math.min(...fixed)
    assert.ok(least <= 8, `fixed factor: ${fixed.join(', ')} major collections in ${MIB} MiB`)
    // seen alone: 17-56; with other processes competing for the CPU, 5-7 in one run of four
    const stock = runs([], (n) => n >= 12 && n >= 2 * least)
    const most = Math.max(...stock)
    assert.ok(
      most >= 12 && most >= 2 * least,
      `stock: ${stock.join(', ')} major collections in ${MIB} MiB against ${least} with the fixed factor (the storm is gone?)`,
    )
  })
})
