/**
 * A command's output reaches a slow pipe reader whole (src/cli/exit.ts): `process.exit()` right after a large write
 * drops what stdout still queues, so the reader got part of the answer and exit status 0.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const EXIT = fileURLToPath(new URL('../../src/cli/exit.ts', import.meta.url))
const BYTES = 8 * 1024 * 1024

/** Runs a child that writes BYTES to stdout and exits; reads its stdout with a 300-ms pause after the first chunk. */
async function slowRead(
  exitWith: 'flushThenExit' | 'process.exit',
): Promise<{ bytes: number; sha: string; code: number | null }> {
  const exit = exitWith === 'flushThenExit' ? 'await m.flushThenExit(0)' : 'process.exit(0)'
  const code = `import(${JSON.stringify(EXIT)}).then(async (m) => { process.stdout.write(Buffer.alloc(${BYTES}, 97)); ${exit} })`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const hash = createHash('sha256')
  let bytes = 0
  child.stdout.on('data', (d: Buffer) => {
    if (bytes === 0) {
      // a slow reader: nothing more for 300 ms after the first chunk
      child.stdout.pause()
      setTimeout(() => child.stdout.resume(), 300)
    }
    hash.update(d)
    bytes += d.length
  })
  const status = await new Promise<number | null>((r) => child.on('close', (c) => r(c)))
  return { bytes, sha: hash.digest('hex'), code: status }
}

describe('exiting after the output is written', () => {
  it('flushThenExit: a reader 300 ms late still gets all 8 MiB, sha256 intact, status 0', async () => {
    const r = await slowRead('flushThenExit')
    assert.deepEqual(r, {
      bytes: BYTES,
      sha: createHash('sha256').update(Buffer.alloc(BYTES, 97)).digest('hex'),
      code: 0,
    })
  })

  it('process.exit() alone cuts the same output short (what flushThenExit is for)', async () => {
    const r = await slowRead('process.exit')
    assert.equal(r.code, 0)
    assert.ok(r.bytes < BYTES, `got ${r.bytes} of ${BYTES} bytes`)
  })
})
