#!/usr/bin/env node
// The `warren` command. Installed from the package it runs the compiled JavaScript in dist/; in a source checkout
// (src/ present and a Node that strips types) it runs the TypeScript sources directly, so no build is needed.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { enableWarrenCompileCache } from './compile-cache.js'
import { daemonBundle } from './daemon-bundle.js'
import { loadDaemonBundle } from './daemon-load.js'

const MIN_MAJOR = 22
const major = Number(process.versions.node.split('.')[0])
if (!(major >= MIN_MAJOR)) {
  process.stderr.write(
    `warren: Node.js ${MIN_MAJOR} or newer is required, but this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      '  Install Node.js 22 or newer: from https://nodejs.org/en/download, with your package manager, or with nvm\n' +
      '  (`nvm install 22`); then run warren again (`node --version` shows which Node the shell finds first).\n',
  )
  process.exit(1)
}

/**
 * The settings a long-running daemon (`warren up`, `warren relay`) starts with, measured in docs/performance.md: a
 * young generation of at most 2 MiB per semi-space (V8 grows it to 32 MiB while the modules load and keeps it; the
 * small one also costs less CPU per forwarded byte) and two malloc arenas (glibc gives each thread its own).
 * They can only be set when the process starts, so the daemon replaces itself once with a Node started with them
 * (`process.execve`: same pid, same stdio); WARREN_NODE_TUNED marks the second start, and a Node without execve,
 * or flags of the user's own in NODE_OPTIONS or the command line, keep the process as it is.
 */
const DAEMON_FLAGS = ['--max-semi-space-size=2']
/**
 * `warren up` sets its old generation's limit at 3x the live heap after each major collection instead of V8's
 * estimate (1.1-4x). The bytes of a transfer pass in Buffers whose backing stores V8 counts against that limit, and
 * after a collection at idle (V8's memory reducer, or the idle trim's compaction) the estimate fell to 1.1-1.3 and
 * stayed there: the next transfers ran a major collection every ~10 MiB, at 95-240 MiB/s and 5-7 CPU-s per GiB on
 * each end instead of 400-500 at 1.2-2 (docs/performance.md, "Major collections in a transfer"; UPSTREAM.md).
 *
 * It also optimizes a function with TurboFan after 1,000 calls instead of V8's 3,000: much of a forwarded
 * connection's code runs once per connection, so with the default it ran unoptimized or Maglev-compiled for the
 * first few thousand connections. Once started, the daemon lowers its thresholds further (src/daemon/tiering.ts);
 * this flag also tells it that it was started here.
 */
const UP_FLAGS = ['--heap-growing-percent=200', '--invocation-count-for-turbofan=1000']
/**
 * `gc` for the relay's heap compaction after bursts of connections (src/relay/server/heap-compact.ts): without it the
 * committed heap of a relay with thousands of idle connections stayed ~3x its live heap. (`--optimize-for-size`
 * compacts as well, but costs the relay ~3.7x the CPU per relayed byte: docs/performance.md.)
 *
 * The fixed heap growing factor, as for `warren up`: after a compaction V8 kept the old generation's limit close to
 * the live heap, and the relayed bytes' Buffers made it collect every few MiB (major marking and sweeping were about
 * half of a relay's CPU in the NAT lab, at 1.0-1.2 CPU-s per relayed Gbit; 0.56-0.58 with the factor).
 */
const RELAY_FLAGS = ['--expose-gc', '--heap-growing-percent=200']
const TUNED = 'WARREN_NODE_TUNED'

/** The words of argv that are not options (global options such as `--home <dir>` skipped). */
function wordsOf(argv) {
  const words = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--home') i++
    else if (!a.startsWith('-')) words.push(a)
  }
  return words
}

/** The subcommands of `warren relay` (src/cli/relay.ts) that talk to a running relay instead of being one. */
const RELAY_CLIENT_COMMANDS = ['status', 'reload']

/**
 * `up` or `relay` when this process is to be a daemon (`warren relay` itself, not its `status` or `reload`). Option
 * values count as words here (`--listen <addr>`), so only a known subcommand right after `relay` makes it a client.
 */
const daemonCommand = (() => {
  const [cmd, sub] = wordsOf(process.argv.slice(2))
  return cmd === 'up' || (cmd === 'relay' && !RELAY_CLIENT_COMMANDS.includes(sub)) ? cmd : undefined
})()

function tuneDaemon() {
  if (daemonCommand === undefined) return
  if (process.env[TUNED] !== undefined || typeof process.execve !== 'function' || process.platform !== 'linux') return
  const own = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  if (own.some((f) => f.startsWith('--max-semi-space-size'))) return
  const env = { ...process.env, [TUNED]: '1' }
  env.MALLOC_ARENA_MAX ??= '2'
  try {
    process.execve(
      process.execPath,
      [
        process.execPath,
        ...DAEMON_FLAGS,
        ...(daemonCommand === 'relay' ? RELAY_FLAGS : UP_FLAGS),
        ...process.execArgv,
        ...process.argv.slice(1),
      ],
      env,
    )
  } catch {
    // not permitted here (a sandbox, a Node built without it): run with the defaults
  }
}
tuneDaemon()
// compiled code for Warren's modules from the last run, in the user's own cache directory (bin/compile-cache.js)
const compileCache = enableWarrenCompileCache()

const source = new URL('../src/cli/main.ts', import.meta.url)
const compiled = new URL('../dist/cli/main.js', import.meta.url)
const useSource = Boolean(process.features.typescript) && existsSync(source)

let cli
try {
  // the daemon runs from one bundled script when there is one (bin/daemon-bundle.js)
  const bundle =
    daemonCommand === 'up' ? await daemonBundle(fileURLToPath(new URL('..', import.meta.url)), useSource) : undefined
  // with the code it compiled the last time it ran (bin/daemon-load.js); a bundle that fails to load leaves the modules
  if (bundle !== undefined) {
    try {
      cli = loadDaemonBundle(bundle, compileCache.directory).exports
    } catch {
      cli = undefined
    }
  }
  cli ??= await import(useSource ? source.href : compiled.href)
} catch (err) {
  if (!useSource && err?.code === 'ERR_MODULE_NOT_FOUND' && !existsSync(compiled)) {
    process.stderr.write('warren: dist/ is missing; run `npm run build` in the Warren checkout.\n')
    process.exit(70)
  }
  throw err
}

// exit explicitly: stdin (warren connect) or a lingering handle must not keep a finished command alive; once what
// stdout and stderr queue is written (a pipe's slow reader must get the whole answer)
const status = await cli.main(process.argv.slice(2))
const code = typeof status === 'number' ? status : 0
if (typeof cli.flushThenExit === 'function') await cli.flushThenExit(code)
process.exit(code)
