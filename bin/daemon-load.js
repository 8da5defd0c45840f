// Runs the daemon's bundle (dist/daemon.cjs, bin/daemon-bundle.js) with V8's code cache of the code it ran last
// time. V8 compiles most functions on their first call, and Node's own compile cache (bin/compile-cache.js) is
// written right after a module is compiled, so it holds what runs at load and none of what runs for a connection:
// half of a fresh daemon's first connection was compiling its code (docs/performance.md, "Start-up"). Here the
// cache is made as the process exits, from everything it compiled, and read at the next start.
//
// The cache file sits in the compile cache's directory (the user's own, 0700), mode 0600, named by a hash of the
// bundle and of Node's version: V8 itself checks only the source's length and its own version and flags, so a
// rebuilt bundle never meets code compiled from another. A cache V8 rejects is ignored (and rewritten at exit).
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import vm from 'node:vm'

/** import() for the bundle: packages resolve from the same node_modules as from dist/. */
const warrenImport = (specifier) => import(specifier)

const PREFIX = 'daemon-'
const SUFFIX = '.v8'

/** The cache file for `source` in `dir`. */
export function codeCachePath(dir, source) {
  const key = createHash('sha256').update(process.version).update('\0').update(source).digest('hex').slice(0, 24)
  return join(dir, `${PREFIX}${key}${SUFFIX}`)
}

/** Writes `data` to `path` whole or not at all (0600), and removes the caches of other bundles beside it. */
function save(path, data) {
  const tmp = `${path}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, data, { mode: 0o600 })
    renameSync(tmp, path)
    const dir = dirname(path)
    const own = path.slice(dir.length + 1)
    for (const f of readdirSync(dir)) {
      if (f !== own && f.startsWith(PREFIX) && f.endsWith(SUFFIX)) rmSync(join(dir, f), { force: true })
    }
  } catch {
    rmSync(tmp, { force: true })
  }
}

/**
 * Runs the CommonJS script `file` and returns its exports, with the code cache in `cacheDir` when there is one
 * (undefined: no cache). `cache` says what became of it: `none` (no file yet, or no directory), `used`, `rejected`.
 */
export function loadDaemonBundle(file, cacheDir) {
  const source = readFileSync(file, 'utf8')
  const cachePath = cacheDir === undefined ? undefined : codeCachePath(cacheDir, source)
  let cachedData
  if (cachePath !== undefined) {
    try {
      cachedData = readFileSync(cachePath)
    } catch {
      // none yet
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname, __warrenImport) {${source}\n})`
  const script = new vm.Script(wrapped, {
    filename: file,
    cachedData,
    // the bundle's import() calls go through warrenImport (bin/daemon-bundle.js); this serves any other
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  const cache = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used'
  if (cachePath !== undefined) {
    process.once('exit', () => {
      try {
        save(cachePath, script.createCachedData())
      } catch {
        // the cache only saves time
      }
    })
  }
  const module = { exports: {} }
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file), warrenImport)
  return { exports: module.exports, cache }
}
