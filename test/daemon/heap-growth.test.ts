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

describe('V8 heap growth after a collection at idle', () => {
  it('stock heap settings: a major collection every few MiB; the daemon’s fixed factor: a few in the whole transfer', () => {
    const stock = run([])
    const fixed = run(['--heap-growing-percent=200'])
    for (const r of [stock, fixed]) {
      assert.equal(r.bytes, MIB * 1024 * 1024)
      assert.equal(r.sha256, r.sent)
    }
    // seen: stock 17-48, fixed 4-5 (with and without two CPU burners beside it)
    assert.ok(stock.majors >= 12, `stock: ${stock.majors} major collections in ${MIB} MiB (the storm is gone?)`)
    assert.ok(fixed.majors * 2 <= stock.majors, `fixed factor: ${fixed.majors}, stock: ${stock.majors}`)
  })
})
