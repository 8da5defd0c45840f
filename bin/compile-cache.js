// Node's compile cache for the `warren` command: V8's compiled code for Warren's modules, kept on disk, so that the
// next start reads it instead of parsing, stripping types and compiling the modules again (docs/performance.md,
// "Start-up"). It lives in the user's own cache directory, $XDG_CACHE_HOME/warren/compile-cache or
// ~/.cache/warren/compile-cache, made 0700; never in a shared directory such as /tmp, where another user could leave
// compiled code for Warren to run. A directory on that path that is not the user's own, or that others can write
// to, turns the cache off for the run, and nothing is made inside one (under `sudo`, which may keep the user's HOME,
// root leaves nothing in the user's ~/.cache); so does NODE_DISABLE_COMPILE_CACHE=1 (Node's own switch), and so
// does any error: the cache only saves time, and the command runs the same without it.
import { existsSync, mkdirSync, statSync } from 'node:fs'
// the default export: a named import of what an older Node lacks would fail before bin/warren.js checks the version
import nodeModule from 'node:module'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join } from 'node:path'

/** The cache directory for `env`: under $XDG_CACHE_HOME when it is an absolute path, else under ~/.cache. */
export function compileCacheDir(env = process.env) {
  const xdg = env.XDG_CACHE_HOME
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache')
  return join(base, 'warren', 'compile-cache')
}

/** Why directory `d` is not this user's own, or undefined when it is one of this user's that no other user can write to. */
function notOwnBecause(d, uid) {
  const st = statSync(d)
  if (!st.isDirectory()) return `${d} is not a directory`
  if (st.uid !== uid) return `${d} belongs to user ${st.uid}, not ${uid}`
  if ((st.mode & 0o022) !== 0) return `${d} can be written by other users (mode ${(st.mode & 0o777).toString(8)})`
  return undefined
}

/**
 * Why `dir` and the two directories above it (warren/ and the cache base) are not safe to load compiled code
 * from, or undefined when each is a directory of this user's that no other user can write to.
 */
export function unsafeBecause(dir, uid = process.getuid?.()) {
  if (uid === undefined) return 'this platform has no user ids to check the directory against'
  for (let d = dir, i = 0; i < 3; d = dirname(d), i++) {
    const why = notOwnBecause(d, uid)
    if (why !== undefined) return why
  }
  return undefined
}

/**
 * Makes what is missing of the cache directory, 0700, but only inside a directory that is this user's own: under
 * `sudo`, which may keep the user's HOME, root leaves nothing in that user's ~/.cache. Returns why it did not.
 */
function makeOwn(dir, uid) {
  const warren = dirname(dir)
  const base = dirname(warren)
  let why = existsSync(base) ? notOwnBecause(base, uid) : notOwnBecause(dirname(base), uid)
  if (why !== undefined) return why
  for (const d of [base, warren, dir]) {
    if (!existsSync(d)) mkdirSync(d, { mode: 0o700 })
    why = notOwnBecause(d, uid)
    if (why !== undefined) return why
  }
  return undefined
}

/**
 * Turns the compile cache on for this process: `{ directory }` when it is on, `{ off: reason }` when it is not.
 */
export function enableWarrenCompileCache(env = process.env) {
  // Node turns its cache off when the variable is there at all, even empty
  if (env.NODE_DISABLE_COMPILE_CACHE !== undefined) return { off: 'NODE_DISABLE_COMPILE_CACHE is set' }
  const { enableCompileCache, constants } = nodeModule
  if (typeof enableCompileCache !== 'function') return { off: 'this Node has no compile cache' }
  const uid = process.getuid?.()
  if (uid === undefined) return { off: 'this platform has no user ids to check the directory against' }
  try {
    const dir = compileCacheDir(env)
    const unsafe = makeOwn(dir, uid)
    if (unsafe !== undefined) return { off: unsafe }
    const r = enableCompileCache(dir)
    const on =
      r.status === constants.compileCacheStatus.ENABLED || r.status === constants.compileCacheStatus.ALREADY_ENABLED
    return on ? { directory: r.directory } : { off: r.message ?? 'Node did not enable it' }
  } catch (err) {
    return { off: err instanceof Error ? err.message : String(err) }
  }
}
