// The daemon (`warren up`) as one bundled module, dist/daemon.mjs: Node keeps a module record, its source and its
// compiled code per module, and the ~1,200 modules of the daemon and its dependencies held ~30 MiB of an idle
// daemon's memory more than the same code in one module (docs/performance.md). `npm run build` writes the bundle
// for the package; in a source checkout it is built here with esbuild (a dev dependency) whenever a source file is
// newer than it. WARREN_BUNDLE=0 runs the modules one by one; so does any failure to build or find the bundle.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** Loaded from node_modules at run time: native addons, and a package that reads its own package.json. */
const EXTERNAL = ['koffi', 'udx-native', '@achingbrain/ssdp', 'node-datachannel', 'sodium-native']

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
      format: 'esm',
      target: 'node22',
      external: EXTERNAL,
      // no keepNames: it defines \`name\` on every closure as it is created, which turns each into a dictionary-mode
      // object (~250 bytes, 36 per forwarded connection); errors are told apart by their own \`name\` fields
      // no comments, no indentation: the source Node keeps for the bundle is a third smaller
      minifyWhitespace: true,
      legalComments: 'none',
      logLevel: 'silent',
      banner: {
        js: "import { createRequire as __warrenRequire } from 'node:module';const require = __warrenRequire(import.meta.url);",
      },
    })
    renameSync(tmp, outfile)
  } finally {
    rmSync(tmp, { force: true })
    // esbuild's service process would otherwise live as long as the daemon
    await stop()
  }
}

/** The URL of the bundle to run the daemon from, or undefined to run the modules one by one. */
export async function daemonBundle(root, fromSource) {
  if (process.env.WARREN_BUNDLE === '0') return undefined
  const outfile = join(root, 'dist', 'daemon.mjs')
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
    return existsSync(outfile) ? pathToFileURL(outfile) : undefined
  } catch {
    return undefined
  }
}

/** `node bin/daemon-bundle.js`: writes dist/daemon.mjs (the last step of `npm run build`). */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('..', import.meta.url))
  await buildDaemonBundle(root, join(root, 'dist', 'daemon.mjs'))
}
