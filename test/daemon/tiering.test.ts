/**
 * A running daemon's V8 tiering thresholds (src/daemon/tiering.ts): that V8 takes them when they are set in a
 * running process (checked against the V8 in use, in a child with `--allow-natives-syntax`), and when the daemon
 * sets them.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { LAUNCHER_TIERING, optimizeSoonerAfter, SOONER_TIERING } from '../../src/daemon/tiering.ts'

const TIERING = fileURLToPath(new URL('../../src/daemon/tiering.ts', import.meta.url))

/**
 * Calls a small function up to 900 times in batches of 50, waiting after each for V8's compile jobs on other threads,
 * and prints after how many calls V8 had it compiled by TurboFan (0: not by then).
 */
const PROBE = `
import { optimizeSooner } from ${JSON.stringify(TIERING)}
if (process.argv.includes('sooner')) optimizeSooner()
function add(o) { return o.a + o.b * 2 }
let turbofanAt = 0
for (let calls = 50; calls <= 900 && turbofanAt === 0; calls += 50) {
  for (let i = 0; i < 50; i++) add({ a: i, b: calls });
  %WaitForBackgroundOptimization();
  await new Promise((r) => setImmediate(r))
  if ((%GetOptimizationStatus(add) & (1 << 6)) !== 0) turbofanAt = calls
}
console.log(turbofanAt)
`

function probe(arg: string): number {
  const r = spawnSync(
    process.execPath,
    ['--allow-natives-syntax', '--invocation-count-for-turbofan=1000', '--input-type=module', '-e', PROBE, arg],
    { encoding: 'utf8', timeout: 30_000 },
  )
  assert.equal(r.status, 0, r.stderr)
  return Number(r.stdout.trim())
}

describe('V8 tiering of a running daemon', () => {
  it('V8 takes the thresholds set in a running process: TurboFan within 900 calls only with them', () => {
    assert.equal(probe('default'), 0, 'with TurboFan after 1,000 calls a function was optimized within 900')
    const at = probe('sooner')
    assert.ok(at > 0 && at <= 900, `with ${SOONER_TIERING.join(' ')} set, not optimized by TurboFan within 900 calls`)
  })

  it('bin/warren.js starts `warren up` with the threshold the daemon takes for its mark', () => {
    const launcher = readFileSync(fileURLToPath(new URL('../../bin/warren.js', import.meta.url)), 'utf8')
    const upFlags = /const UP_FLAGS = \[([^\]]*)\]/.exec(launcher)?.[1] ?? ''
    assert.ok(upFlags.includes(`'${LAUNCHER_TIERING}'`), `UP_FLAGS in bin/warren.js: ${upFlags}`)
  })

  it('sets them after the delay when started by bin/warren.js, and not after stop()', async () => {
    let set = 0
    optimizeSoonerAfter(10, ['--heap-growing-percent=200', '--invocation-count-for-turbofan=1000'], () => set++)
    const stopped = optimizeSoonerAfter(10, ['--invocation-count-for-turbofan=1000'], () => set++)
    stopped.stop()
    await sleep(100)
    assert.equal(set, 1)
  })

  it('keeps the thresholds of a process not started by bin/warren.js, or with tiering flags of the user’s own', async () => {
    let set = 0
    for (const argv of [
      [],
      ['--invocation-count-for-turbofan=500'],
      ['--invocation-count-for-turbofan=1000', '--invocation-count-for-maglev=300'],
      ['--invocation-count-for-turbofan=1000', '--minimum-invocations-after-ic-update=500'],
      ['--invocation-count-for-turbofan=1000', '--invocation-count-for-turbofan=1000'],
    ]) {
      optimizeSoonerAfter(10, argv, () => set++)
    }
    await sleep(100)
    assert.equal(set, 0)
  })
})
