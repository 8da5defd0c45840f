/**
 * The daemon's bundle runs with V8's code cache of what it compiled the last time (bin/daemon-load.js): written at
 * exit, 0600, named by the bundle's hash, used at the next start, ignored when V8 rejects it, and replaced when the
 * bundle changes. Each run is a real process, as the daemon is.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const LOADER = fileURLToPath(new URL('../../bin/daemon-load.js', import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), 'warren-daemon-load-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

/** A CommonJS script as the bundle is: functions compiled only when called, and an import() of a package. */
function bundle(dir: string, version: number): string {
  const file = join(dir, 'bundle.cjs')
  const body = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + ${version} }`).join('\n')
  writeFileSync(
    file,
    `'use strict';\n${body}\nexports.run = async () => { let s = 0; for (let i = 0; i < 200; i++) s += eval('f' + i)(2); ` +
      `const os = await __warrenImport('node:os'); return { sum: s, eol: JSON.stringify(os.EOL) } }\n`,
  )
  return file
}

/** Loads `file` with the cache in `dir` in a new process: what became of the cache, and what the script returned. */
async function load(file: string, dir: string): Promise<{ cache: string; out: { sum: number; eol: string } }> {
  const code =
    `const { loadDaemonBundle } = await import(${JSON.stringify(LOADER)}); ` +
    `const r = loadDaemonBundle(${JSON.stringify(file)}, ${JSON.stringify(dir)}); ` +
    `console.log(JSON.stringify({ cache: r.cache, out: await r.exports.run() }))`
  const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', code], { timeout: 60_000 })
  assert.equal(stderr, '', 'nothing on stderr (no experimental-feature warning)')
  return JSON.parse(stdout) as { cache: string; out: { sum: number; eol: string } }
}

const caches = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.v8'))

test('the first run writes the cache at exit (0600), the next one uses it, with the same results', async () => {
  const dir = mkdtempSync(join(scratch, 'first-'))
  const file = bundle(dir, 1)
  const first = await load(file, dir)
  assert.equal(first.cache, 'none')
  assert.deepEqual(first.out, { sum: 40_000, eol: JSON.stringify('\n') })
  const [written] = caches(dir)
  assert.match(written ?? '', /^daemon-[0-9a-f]{24}\.v8$/)
  assert.equal(statSync(join(dir, written!)).mode & 0o777, 0o600)
  const second = await load(file, dir)
  assert.equal(second.cache, 'used')
  assert.deepEqual(second.out, first.out)
})

test('a damaged cache is rejected by V8 and ignored; the script runs and the cache is written anew', async () => {
  const dir = mkdtempSync(join(scratch, 'damaged-'))
  const file = bundle(dir, 2)
  await load(file, dir)
  const [name] = caches(dir)
  writeFileSync(join(dir, name!), Buffer.alloc(4096, 7))
  const r = await load(file, dir)
  assert.equal(r.cache, 'rejected')
  assert.equal(r.out.sum, 40_200)
  assert.equal((await load(file, dir)).cache, 'used')
})

test('a changed bundle never meets the old code: another cache file, and the old one goes', async () => {
  const dir = mkdtempSync(join(scratch, 'changed-'))
  const file = bundle(dir, 3)
  await load(file, dir)
  const [before] = caches(dir)
  bundle(dir, 4) // same length, other code
  const r = await load(file, dir)
  assert.equal(r.cache, 'none')
  assert.equal(r.out.sum, 40_600)
  const after = caches(dir)
  assert.equal(after.length, 1)
  assert.notEqual(after[0], before)
})
