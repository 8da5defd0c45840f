/** bench/setup-held.ts refuses counts it cannot take, with its exact words, before it starts anything. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { openFilesLimit } from '../../bench/peers/workloads.ts'

const run = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('../../bench/setup-held.ts', import.meta.url))

async function refused(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const err = await run(process.execPath, [SCRIPT, ...args], { timeout: 60_000 }).then(
    () => assert.fail(`setup-held ${args.join(' ')} ran`),
    (e: { code: number; stderr: string; stdout: string }) => e,
  )
  return { code: err.code, stderr: err.stderr, stdout: err.stdout }
}

test('a count that is not a whole number is refused with exit status 2', async () => {
  for (const args of [['--held', '0,x'], ['--held=-1'], ['--connections', '1.5'], ['--rounds', 'two']]) {
    const r = await refused(args)
    assert.equal(r.code, 2, args.join(' '))
    assert.equal(
      r.stderr,
      'setup-held: --held takes whole numbers separated by commas; the other counts whole numbers\n',
    )
    assert.equal(r.stdout, '')
  }
})

test('more held connections than a daemon may open files is refused with exit status 1', async () => {
  const limit = openFilesLimit()
  const n = Number.isFinite(limit) ? limit : 2 ** 40
  const r = await refused(['--held', `0,${n}`])
  assert.equal(r.code, 1)
  assert.equal(
    r.stderr,
    `setup-held: ${n} held connections take a descriptor each in each daemon, and the open-file limit is ${limit}\n`,
  )
})
