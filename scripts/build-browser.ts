/**
 * Bundles the browser library (src/browser/index.ts) into dist/browser/warren.js, one ES module, and the web app
 * (src/browser/web) into dist/browser/app.js and dist/browser/sw.js, classic scripts (a Service Worker registered
 * without `type: 'module'` must be one), with esbuild. `node:crypto`, `Buffer` and `zod`, which a few shared modules
 * use, are served by small shims (src/browser/shims). Prints the library's size, raw and gzipped; `--json` prints it
 * as JSON.
 *
 *   node scripts/build-browser.ts [--json] [--no-minify]
 */
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { type BuildOptions, build, type Plugin } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const BUNDLE = join(root, 'dist', 'browser', 'warren.js')
const shim = (name: string): string => join(root, 'src', 'browser', 'shims', name)

/** `zod` (exactly; the shim's own `zod/v4` passes) resolves to src/browser/shims/zod.ts. */
const zodShim: Plugin = {
  name: 'warren-zod-shim',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, () => ({ path: shim('zod.ts') }))
  },
}

/**
 * Builds the library and the web app into `outDir` (default dist/browser; tests build into a directory of their
 * own, so that test files running at once never read a bundle another is writing); resolves with the library's path
 * and size in bytes, raw and gzipped.
 */
export async function buildBrowser(
  opts: { minify?: boolean; outDir?: string } = {},
): Promise<{ path: string; bytes: number; gzip: number }> {
  const outDir = opts.outDir ?? dirname(BUNDLE)
  const library = join(outDir, 'warren.js')
  const common: BuildOptions = {
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    minify: opts.minify ?? true,
    sourcemap: true,
    legalComments: 'none',
    alias: { 'node:crypto': shim('node-crypto.ts') },
    inject: [shim('buffer.ts')],
    plugins: [zodShim],
    logLevel: 'warning',
  }
  const web = (entry: string, out: string) =>
    build({
      ...common,
      entryPoints: [join(root, 'src', 'browser', 'web', entry)],
      outfile: join(outDir, out),
      format: 'iife',
    })
  await Promise.all([
    build({ ...common, entryPoints: [join(root, 'src', 'browser', 'index.ts')], outfile: library, format: 'esm' }),
    web('app.ts', 'app.js'),
    web('service-worker.ts', 'sw.js'),
  ])
  const code = await readFile(library)
  return { path: library, bytes: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const size = await buildBrowser({ minify: !process.argv.includes('--no-minify') })
  if (process.argv.includes('--json')) console.log(JSON.stringify(size))
  // on stderr: `npm pack --json` runs the build and reads its own JSON from stdout
  else
    console.error(`${size.path}: ${(size.bytes / 1024).toFixed(1)} KiB, ${(size.gzip / 1024).toFixed(1)} KiB gzipped`)
}
