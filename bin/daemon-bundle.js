// The daemon (`warren up`) as one bundled script, dist/daemon.cjs: Node keeps a module record, its source and its
// compiled code per module, and the ~1,200 modules of the daemon and its dependencies held ~30 MiB of an idle
// daemon's memory more than the same code in one module (docs/performance.md). It is a CommonJS script, not an ES
// module, so that bin/daemon-load.js can run it with V8's code cache of what it compiled the last time it ran.
// `npm run build` writes the bundle for the package; in a source checkout it is built here with esbuild (a dev
// dependency) whenever a source file is newer than it. WARREN_BUNDLE=0 runs the modules one by one; so does any
// failure to build or find the bundle.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Loaded from node_modules at run time: native addons. */
const EXTERNAL = ['koffi', 'udx-native', 'node-datachannel', 'sodium-native']

/**
 * `@achingbrain/ssdp` reads its own package.json, so it stays in node_modules, and it is an ES module only, which a
 * CommonJS script cannot `require`: its one use (`await ssdp(options)` in @achingbrain/nat-port-mapper) gets a
 * function that imports it from node_modules when called.
 */
const ssdpOnImport = {
  name: 'ssdp-on-import',
  setup(b) {
    b.onResolve({ filter: /^@achingbrain\/ssdp$/ }, (args) =>
      args.kind === 'dynamic-import'
        ? { path: args.path, external: true }
        : { path: 'ssdp', namespace: 'ssdp-on-import' },
    )
    b.onLoad({ filter: /.*/, namespace: 'ssdp-on-import' }, () => ({
      contents: "module.exports = (...args) => import('@achingbrain/ssdp').then((m) => m.default(...args))",
      loader: 'js',
    }))
  },
}

/** The newest modification time of the files under `dir` (recursive), ms. */
function newestUnder(dir) {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const t = statSync(join(e.parentPath, e.name)).mtimeMs
    if (t > newest) newest = t
  }
  return newest
}

/** Writes `outfile` from `entry` with esbuild; the file appears whole or not at all. */
export async function buildDaemonBundle(root, outfile) {
  const { build, stop } = await import('esbuild')
  const tmp = `${outfile}.${process.pid}.tmp`
  try {
    await build({
      entryPoints: [join(root, 'src', 'cli', 'main.ts')],
      outfile: tmp,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      external: EXTERNAL,
      plugins: [ssdpOnImport],
      // the sources' import.meta.url is the bundle's own URL, as it was for the ES module bundle
      define: { 'import.meta.url': '__warrenMetaUrl' },
      // no keepNames: it defines \`name\` on every closure as it is created, which turns each into a dictionary-mode
      // object (~250 bytes, 36 per forwarded connection); errors are told apart by their own \`name\` fields
      // no comments, no indentation: the source Node keeps for the bundle is a third smaller
      minifyWhitespace: true,
      legalComments: 'none',
      logLevel: 'silent',
      // strict as the ES modules it is made of
      banner: { js: "'use strict';const __warrenMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    })
    // the bundle's import() of a package in node_modules goes through bin/daemon-load.js's loader (an ES module's
    // own import()): a script's import() through Node's default loader is experimental and warns
    const code = readFileSync(tmp, 'utf8')
    writeFileSync(tmp, code.replace(/(?<![\w$.])import\(("[^"]+")\)/g, '__warrenImport($1)'))
    renameSync(tmp, outfile)
  } finally {
    rmSync(tmp, { force: true })
    // esbuild's service process would otherwise live as long as the daemon
    await stop()
  }
}

/** The path of the bundle to run the daemon from, or undefined to run the modules one by one. */
export async function daemonBundle(root, fromSource) {
  if (process.env.WARREN_BUNDLE === '0') return undefined
  const outfile = join(root, 'dist', 'daemon.cjs')
  try {
    if (fromSource) {
      const built = existsSync(outfile) ? statSync(outfile).mtimeMs : 0
      const newest = Math.max(
        newestUnder(join(root, 'src')),
        ...['package.json', 'package-lock.json', 'bin/daemon-bundle.js'].map((f) =>
          existsSync(join(root, f)) ? statSync(join(root, f)).mtimeMs : 0,
        ),
      )
      if (built <= newest) await buildDaemonBundle(root, outfile)
    }
    return existsSync(outfile) ? outfile : undefined
  } catch {
    return undefined
  }
}

/** `node bin/daemon-bundle.js`: writes dist/daemon.cjs (the last step of `npm run build`). */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('..', import.meta.url))
  await buildDaemonBundle(root, join(root, 'dist', 'daemon.cjs'))
}
