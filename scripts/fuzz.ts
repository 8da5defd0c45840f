/**
 * `npm run fuzz [-- --runs <n>] [--seed <n>] [file …]`: the property-based fuzz tests in test/fuzz/ with many more
 * cases than `npm test` runs (FUZZ_RUNS, default 20000 per parser property, a tenth of that per socket property),
 * then a report: cases tried and failures per property, with the counterexample and seed of any failure.
 * Exits 1 when a property or test failed.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Line {
  name: string
  runs: number
  failures: number
  seed: number
  ms: number
  outcomes?: Record<string, number>
  counterexample?: string
  error?: string
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i < 0 ? undefined : process.argv[i + 1]
}

const runs = option('--runs') ?? process.env.FUZZ_RUNS ?? '20000'
const seed = option('--seed') ?? process.env.FUZZ_SEED
const named = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'))
const files =
  named.length > 0
    ? named
    : readdirSync('test/fuzz')
        .filter((f) => f.endsWith('.test.ts'))
        .map((f) => join('test/fuzz', f))

const dir = mkdtempSync(join(tmpdir(), 'warren-fuzz-'))
const reportFile = join(dir, 'report.jsonl')
const env: NodeJS.ProcessEnv = { ...process.env, FUZZ_RUNS: runs, FUZZ_REPORT: reportFile }
if (seed !== undefined) env.FUZZ_SEED = seed

console.log(`fuzzing ${files.length} files, FUZZ_RUNS=${runs}${seed === undefined ? '' : `, seed ${seed}`}`)
const started = performance.now()
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=3600000', ...files], {
  env,
  stdio: ['ignore', 'pipe', 'pipe'],
})
let output = ''
child.stdout.on('data', (d: Buffer) => {
  output += d.toString()
})
child.stderr.on('data', (d: Buffer) => {
  output += d.toString()
})
const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))

let lines: Line[] = []
try {
  lines = readFileSync(reportFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line)
} catch {
  // no property reported (the test files failed before running any)
}
rmSync(dir, { recursive: true, force: true })

const width = Math.max(8, ...lines.map((l) => l.name.length))
console.log(`\n${'property'.padEnd(width)}  ${'cases'.padStart(8)}  failures  ${'ms'.padStart(7)}  outcomes`)
for (const l of lines) {
  const outcomes = l.outcomes === undefined ? '' : JSON.stringify(l.outcomes)
  console.log(
    `${l.name.padEnd(width)}  ${String(l.runs).padStart(8)}  ${String(l.failures).padStart(8)}  ${String(l.ms).padStart(7)}  ${outcomes}`,
  )
}
const cases = lines.reduce((n, l) => n + l.runs, 0)
const failed = lines.filter((l) => l.failures > 0)
console.log(
  `\n${cases} cases in ${lines.length} properties, ${failed.length} failed, ${Math.round((performance.now() - started) / 1000)} s`,
)
for (const l of failed) {
  console.log(`\nFAILED ${l.name} (seed ${l.seed}): ${l.error}\n  counterexample: ${l.counterexample}`)
}
if (code !== 0) {
  console.log(`\nthe test run exited with ${code}; its output:\n${output}`)
}
process.exit(code !== 0 || failed.length > 0 ? 1 : 0)
