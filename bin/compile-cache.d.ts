// Types of bin/compile-cache.js for the TypeScript that imports it (its tests).
/** The cache directory for `env`: under $XDG_CACHE_HOME when it is an absolute path, else under ~/.cache. */
export function compileCacheDir(env?: NodeJS.ProcessEnv): string
/** Why `dir` and the two directories above it are not safe to load compiled code from, or undefined. */
export function unsafeBecause(dir: string, uid?: number): string | undefined
/** Turns the compile cache on for this process: `{ directory }` when it is on, `{ off: reason }` when it is not. */
export function enableWarrenCompileCache(env?: NodeJS.ProcessEnv): { directory: string } | { off: string }
