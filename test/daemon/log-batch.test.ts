/**
 * The daemon's batched log lines (src/daemon/log-batch.ts): every line kept and in order, one write per batch,
 * and what is held at exit written before the process ends.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { BATCH_BYTES, batchLines } from '../../src/daemon/log-batch.ts'
import { eventually } from '../support/eventually.ts'

describe('batched log lines', () => {
  it('writes the lines of a burst in one write, in order', async () => {
    const writes: string[] = []
    const out = batchLines((text) => writes.push(text))
    for (let i = 0; i < 100; i++) out.write(`line ${i}\n`)
    assert.equal(writes.length, 0)
    await eventually(() => writes.length === 1, { timeoutMs: 2_000, message: 'the batch was not written' })
    assert.equal(writes[0], Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''))
  })

  it('writes at once past BATCH_BYTES, and on flush()', () => {
    const writes: string[] = []
    const out = batchLines((text) => writes.push(text))
    const line = `${'x'.repeat(1023)}\n`
    for (let i = 0; i < BATCH_BYTES / 1024; i++) out.write(line)
    assert.equal(writes.length, 1)
    assert.equal(writes[0]!.length, BATCH_BYTES)
    out.write('last\n')
    out.flush()
    assert.deepEqual(writes.slice(1), ['last\n'])
    out.flush()
    assert.equal(writes.length, 2)
  })

  it('writes what it holds when the process exits', async () => {
    const module = fileURLToPath(new URL('../../src/daemon/log-batch.ts', import.meta.url))
    const script = `
      const { batchLines } = await import(${JSON.stringify(module)})
      const out = batchLines((text) => process.stderr.write(text))
      for (let i = 0; i < 1000; i++) out.write('line ' + i + '\\n')
      process.exit(3)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    assert.equal(code, 3)
    assert.equal(stderr, Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join(''))
  })
})
