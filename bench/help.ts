/**
 * `--help` for the benchmark scripts whose usage is their header comment: `helpIfAsked(import.meta.url)` before
 * `parseArgs` prints the script's leading doc comment and exits 0 when `--help` or `-h` is among the arguments.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type ParseArgsConfig, parseArgs } from 'node:util'

/** The leading doc comment of the file at `url`, without its comment markers. */
export function headerText(url: string): string {
  const src = readFileSync(fileURLToPath(url), 'utf8')
  const m = /^\/\*\*\n([\s\S]*?)\n \*\//.exec(src)
  if (m === null) return ''
  return m[1]!
    .split('\n')
    .map((l) => l.replace(/^ \* ?/, '').replace(/^ \*$/, ''))
    .join('\n')
}

/** Prints the header of the script at `url` and exits when `--help` or `-h` was given. */
export function helpIfAsked(url: string, argv: readonly string[] = process.argv.slice(2)): void {
  if (!argv.includes('--help') && !argv.includes('-h')) return
  process.stdout.write(`${headerText(url)}\n`)
  process.exit(0)
}

/** `parseArgs(config)`, or the parser's complaint as `<name>: <message>` on stderr and exit status 2. */
export function argsOrExit<T extends ParseArgsConfig>(name: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`)
    process.exit(2)
  }
}
