/**
 * Summarizes V8 CPU profiles (`.cpuprofile`, as written by `npm run bench -- --profile <dir>`): for each file,
 * the share of samples by package (`node_modules/<pkg>`, `warren`, `node:` internals, GC, idle) and the top
 * functions by self time.
 *
 *   node bench/profile.ts <dir> [--top 20]
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { helpIfAsked } from './help.ts'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

function bucketOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return '(gc)'
  if (fn === '(idle)' || fn === '(program)') return fn
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  if (url.startsWith('node:')) return 'node: internals'
  if (url.includes('/src/')) return 'warren'
  if (url.includes('/bench/')) return 'bench'
  return url === '' ? '(native)' : url
}

function summarize(profile: Profile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const buckets = new Map<string, number>()
  const fns = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)!
    const { functionName, url, lineNumber } = n.callFrame
    const b = bucketOf(url, functionName)
    buckets.set(b, (buckets.get(b) ?? 0) + us)
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')
    const key = `${functionName || '(anonymous)'}  ${short}:${lineNumber + 1}`
    fns.set(key, (fns.get(key) ?? 0) + us)
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`
  const busy = total - (buckets.get('(idle)') ?? 0)
  const lines = [`  ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`, '  by package:']
  for (const [b, us] of [...buckets].sort((x, y) => y[1] - x[1]).slice(0, 12)) lines.push(`    ${pct(us)}  ${b}`)
  lines.push('  top functions (self time):')
  for (const [f, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`    ${pct(us)}  ${f}`)
  return lines.join('\n')
}

helpIfAsked(import.meta.url)
const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '20' } },
  allowPositionals: true,
})
const dir = positionals[0]
if (dir === undefined) {
  process.stderr.write('usage: node bench/profile.ts <dir with .cpuprofile files> [--top 20]\n')
  process.exit(2)
}
for (const f of (await readdir(dir)).filter((x) => x.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(await readFile(join(dir, f), 'utf8')) as Profile
  process.stdout.write(`${f}\n${summarize(profile, Number(values.top))}\n\n`)
}
