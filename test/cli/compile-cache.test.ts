/**
 * The `warren` command keeps Node's compile cache in the user's own cache directory, made 0700, and refuses a
 * directory on that path that another user owns or can write to (bin/compile-cache.js).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { compileCacheDir, enableWarrenCompileCache, unsafeBecause } from '../../bin/compile-cache.js'

const run = promisify(execFile)
const WARREN = fileURLToPath(new URL('../../bin/warren.js', import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), 'warren-compile-cache-'))
after(() => rmSync(scratch, { recursive: true, force: true }))
/** Tests that hand a directory to another user. */
const asRoot = { skip: process.getuid?.() !== 0 }

/** A fresh cache base under the scratch dir, 0700 as a user's ~/.cache is. */
function base(name: string): string {
  const dir = join(scratch, name)
  mkdirSync(dir, { mode: 0o700 })
  return dir
}

/** `warren --version` with XDG_CACHE_HOME at `cacheHome`: its stdout, after checking it exited 0. */
async function version(cacheHome: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const home = mkdtempSync(join(scratch, 'home-'))
  const { NODE_DISABLE_COMPILE_CACHE: _, ...inherited } = process.env
  const { stdout } = await run(process.execPath, [WARREN, '--version'], {
    env: { ...inherited, WARREN_HOME: home, XDG_CACHE_HOME: cacheHome, ...env },
    timeout: 60_000,
  })
  return stdout
}

/** Every file under `dir`. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))

test('the cache directory is under XDG_CACHE_HOME when it is absolute, else under ~/.cache', () => {
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: '/var/cache/u1' }), '/var/cache/u1/warren/compile-cache')
  const fallback = join(homedir(), '.cache', 'warren', 'compile-cache')
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: 'relative/cache' }), fallback)
  assert.equal(compileCacheDir({}), fallback)
})

test('a command fills the cache in a 0700 directory of its own, and runs the same with it', async () => {
  const cacheHome = base('fills')
  const first = await version(cacheHome)
  const dir = join(cacheHome, 'warren', 'compile-cache')
  for (const d of [join(cacheHome, 'warren'), dir]) assert.equal(statSync(d).mode & 0o777, 0o700, d)
  assert.ok(filesUnder(dir).length > 0, 'no compiled code was written')
  assert.equal(await version(cacheHome), first)
  assert.match(first, /^\d+\.\d+\.\d+/)
})

test('damaged cache files are compiled anew: the command runs the same and rewrites them', async () => {
  const cacheHome = base('damaged')
  const first = await version(cacheHome)
  const files = filesUnder(join(cacheHome, 'warren', 'compile-cache'))
  assert.ok(files.length > 0)
  for (const f of files) writeFileSync(f, randomBytes(100))
  assert.equal(await version(cacheHome), first)
  const rewritten = files.filter((f) => statSync(f).size !== 100)
  assert.ok(rewritten.length > 0, 'no damaged file was rewritten')
})

test('a cache directory other users can write to is not used, and the command still runs', async () => {
  const cacheHome = base('open')
  const dir = join(cacheHome, 'warren', 'compile-cache')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o777)
  assert.equal(unsafeBecause(dir), `${dir} can be written by other users (mode 777)`)
  assert.match(await version(cacheHome), /^\d+\.\d+\.\d+/)
  assert.deepEqual(filesUnder(dir), [])
})

test('a directory on the path that belongs to another user is refused', asRoot, () => {
  const cacheHome = base('owner')
  const dir = join(cacheHome, 'warren', 'compile-cache')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chownSync(join(cacheHome, 'warren'), 65534, 65534)
  assert.equal(unsafeBecause(dir), `${join(cacheHome, 'warren')} belongs to user 65534, not 0`)
  const got = enableWarrenCompileCache({ XDG_CACHE_HOME: cacheHome })
  assert.deepEqual(got, { off: `${join(cacheHome, 'warren')} belongs to user 65534, not 0` })
})

test('a file where the directory should be turns the cache off with the reason', () => {
  const cacheHome = base('file')
  mkdirSync(join(cacheHome, 'warren'), { mode: 0o700 })
  writeFileSync(join(cacheHome, 'warren', 'compile-cache'), 'not a directory')
  const file = join(cacheHome, 'warren', 'compile-cache')
  assert.deepEqual(enableWarrenCompileCache({ XDG_CACHE_HOME: cacheHome }), { off: `${file} is not a directory` })
  assert.equal(unsafeBecause(file), `${file} is not a directory`)
})

test('nothing is made in a cache directory of another user (sudo keeping HOME)', asRoot, async () => {
  const cacheHome = base('sudo')
  chownSync(cacheHome, 65534, 65534)
  assert.deepEqual(enableWarrenCompileCache({ XDG_CACHE_HOME: cacheHome }), {
    off: `${cacheHome} belongs to user 65534, not 0`,
  })
  assert.match(await version(cacheHome), /^\d+\.\d+\.\d+/)
  assert.deepEqual(readdirSync(cacheHome), [])
})

test('a missing cache directory is made only inside a directory of this user', asRoot, () => {
  const home = base('foreign-home')
  chownSync(home, 65534, 65534)
  const cacheHome = join(home, 'cache')
  assert.deepEqual(enableWarrenCompileCache({ XDG_CACHE_HOME: cacheHome }), {
    off: `${home} belongs to user 65534, not 0`,
  })
  assert.deepEqual(readdirSync(home), [])
})

test('NODE_DISABLE_COMPILE_CACHE turns it off: nothing is made', async () => {
  const cacheHome = base('disabled')
  assert.deepEqual(enableWarrenCompileCache({ XDG_CACHE_HOME: cacheHome, NODE_DISABLE_COMPILE_CACHE: '1' }), {
    off: 'NODE_DISABLE_COMPILE_CACHE is set',
  })
  assert.match(await version(cacheHome, { NODE_DISABLE_COMPILE_CACHE: '1' }), /^\d+\.\d+\.\d+/)
  assert.deepEqual(readdirSync(cacheHome), [])
})
