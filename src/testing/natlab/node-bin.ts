/**
 * Finds the project's pinned Node (`node_modules/.bin/node`) by absolute path, so processes started inside lab
 * namespaces run the same Node 24 as the tests, never the system one.
 *
 * @packageDocumentation
 */
import { existsSync, realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WarrenError } from '../../errors.ts'

let cached: string | undefined

/** Absolute path of the pinned Node binary, found by walking up from this file to `node_modules/.bin/node`. */
export function pinnedNode(): string {
  if (cached !== undefined) return cached
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 10; i++) {
    const candidate = join(dir, 'node_modules', '.bin', 'node')
    if (existsSync(candidate)) {
      cached = realpathSync(candidate)
      return cached
    }
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  throw new WarrenError(
    'ERR_LAB',
    'the pinned Node binary node_modules/.bin/node was not found above the lab helpers',
    {
      hint: 'Run `npm install` in the Warren checkout so that the `node` devDependency is installed.',
    },
  )
}
