/**
 * Reading and validating config.json. Every problem is reported with its field path, the bad value and the fix,
 * e.g. `services.web.target: "/tcp/99999" is not a valid port (1-65535)`.
 */
import type { z } from 'zod'
import { WarrenError } from '../errors.ts'
import { readJsonFile } from './json-file.ts'
import { type Config, configSchema } from './schema.ts'

function pathOf(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[')
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<PropertyKey, unknown>)[p]
    // the short service form `"web": "/tcp/8080"` is reported as `services.web.target`
    if (typeof v === 'string' && p !== path.at(-1)) return v
  }
  return v
}

function describe(issue: z.core.$ZodIssue, input: unknown): string {
  const where = pathOf(issue.path) || '(top level)'
  if (issue.code === 'unrecognized_keys') {
    return `${where === '(top level)' ? '' : `${where}: `}unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (see docs/config.md for the keys)`
  }
  if (issue.code === 'invalid_key') {
    const key = String(issue.path.at(-1))
    const why = issue.issues[0]?.message ?? issue.message
    return `${pathOf(issue.path.slice(0, -1))}: key "${key}" ${why}`
  }
  if (issue.code === 'invalid_type') {
    const got = valueAt(input, issue.path)
    const expected = issue.expected === 'int' ? 'a whole number' : issue.expected
    return `${where}: expected ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`
  }
  const value = valueAt(input, issue.path)
  const shown = value === undefined ? '' : `${JSON.stringify(value)} `
  if (issue.code === 'too_small' && issue.origin === 'number') {
    return `${where}: ${shown}is too small: use a number of at least ${issue.minimum}`
  }
  if (issue.code === 'too_big' && issue.origin === 'number') {
    return `${where}: ${shown}is too large: use a number of at most ${issue.maximum}`
  }
  if (issue.code === 'too_small' && issue.origin === 'string') return `${where}: must not be empty`
  return `${where}: ${shown}${issue.message}`
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Validates a parsed config object; throws ERR_CONFIG_INVALID listing every problem. */
export function validateConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input)
  const problems: string[] = result.success ? [] : result.error.issues.map((i) => describe(i, input))
  // the alias checks read the raw input, so they are listed along with the schema's problems
  const raw = (isObject(input) ? input : {}) as { peers?: unknown; services?: unknown; rpc?: unknown }
  const peers = isObject(raw.peers) ? raw.peers : {}
  const reported = new Set(result.success ? [] : result.error.issues.map((i) => i.path.join('.')))
  const checkAllow = (allow: unknown, where: string): void => {
    if (!Array.isArray(allow)) return
    allow.forEach((entry: unknown, i) => {
      if (typeof entry !== 'string' || reported.has(`${where}.${i}`)) return
      if (entry !== '*' && !entry.startsWith('12D3KooW') && !entry.startsWith('k51') && !(entry in peers)) {
        problems.push(
          `${where}[${i}]: "${entry}" is not an alias in peers (add "peers": { "${entry}": "<node id>" } or use the node id)`,
        )
      }
    })
  }
  if (isObject(raw.services)) {
    for (const [name, svc] of Object.entries(raw.services)) {
      if (isObject(svc)) checkAllow(svc.allow, `services.${name}.allow`)
    }
  }
  if (isObject(raw.rpc)) checkAllow(raw.rpc.allow, 'rpc.allow')
  if (result.success && problems.length === 0) return result.data
  throw new WarrenError('ERR_CONFIG_INVALID', `${source} is invalid:\n  ${problems.join('\n  ')}`, {
    hint: 'Fix the fields named above; docs/config.md describes every key.',
    details: { problems },
  })
}

/** Reads and validates a config file. */
export async function loadConfig(path: string): Promise<Config> {
  const json = await readJsonFile(path, 'Fix the JSON syntax (no comments or trailing commas).')
  if (json === undefined) {
    throw new WarrenError('ERR_HOME_NOT_INITIALIZED', `no config at ${path}`, {
      hint: 'Run `warren init` first (set WARREN_HOME to use another home).',
      details: { path },
    })
  }
  return validateConfig(json, path)
}
