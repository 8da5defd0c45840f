/**
 * What every command shares: the home from `--home`, a client for the daemon, `<node>/<service>` parsing,
 * and output (human text or `--json`).
 */
import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import { WarrenClient } from '../client/client.ts'
import { type HomePaths, resolveHome } from '../config/home.ts'
import { WarrenError } from '../errors.ts'
import { escapeControl, jsonText } from '../log.ts'
import type { PathInfo } from '../node/types.ts'

/** The home named by `--home`, else `$WARREN_HOME`, else `~/.warren`. */
export function homeOf(cmd: Command): HomePaths {
  const home = cmd.optsWithGlobals().home as string | undefined
  return resolveHome(home)
}

/** Runs `fn` with a client connected to the home's daemon (ERR_DAEMON_NOT_RUNNING when none runs). */
export async function withClient<T>(cmd: Command, fn: (client: WarrenClient) => Promise<T>): Promise<T> {
  const home = homeOf(cmd)
  const client = await WarrenClient.connect({ home }).catch((err: unknown) => {
    throw err instanceof WarrenError && err.code === 'ERR_DAEMON_NOT_RUNNING' && !existsSync(home.key)
      ? notInitialised(home, err)
      : err
  })
  try {
    return await fn(client)
  } finally {
    client.close()
  }
}

/** ERR_HOME_NOT_INITIALIZED for a home without a key: its first step is `warren init`, not `warren up`. */
function notInitialised(home: HomePaths, cause: WarrenError): WarrenError {
  return new WarrenError('ERR_HOME_NOT_INITIALIZED', `${home.dir} is not a Warren home yet (it has no key)`, {
    hint: 'Run `warren init` first, then start the node with `warren up` (set WARREN_HOME to use another home).',
    details: { home: home.dir },
    cause,
  })
}

/** Collects a repeatable option; commas also separate values (`--allow a,b --allow c`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== ''),
  ]
}

export interface ServiceRef {
  node: string
  service: string
}

/** Service names, as in the config schema (kept here so commands need not load zod to start). */
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** Splits `<node>/<service>`; the node is an alias, a node id (either form) or a ticket. */
export function parseServiceRef(text: string): ServiceRef {
  const slash = text.lastIndexOf('/')
  const node = slash === -1 ? '' : text.slice(0, slash)
  const service = slash === -1 ? '' : text.slice(slash + 1)
  if (node === '' || service === '') {
    throw new WarrenError('ERR_USAGE', `"${text}" is not <node>/<service>`, {
      hint: 'Name the node (alias, node id or ticket) and the service, e.g. laptop/web or 12D3KooW…/ssh.',
      details: { input: text },
    })
  }
  if (!SERVICE_NAME.test(service)) {
    throw new WarrenError('ERR_USAGE', `"${service}" is not a valid service name`, {
      hint: 'Service names are 1-63 lowercase letters, digits and inner hyphens, e.g. web or my-db.',
      details: { input: text },
    })
  }
  return { node, service }
}

/** Writes one line (or several) to stdout. */
export function say(text: string): void {
  process.stdout.write(`${printable(text)}\n`)
}

/**
 * `text` with every control character but its line breaks escaped (`\x1b`, `\r`, `\u202e`): what the CLI prints can
 * quote other nodes, relays and routers (refusal reasons, service descriptions, router errors), and none of it may
 * drive the terminal.
 */
export function printable(text: string): string {
  return text.split('\n').map(escapeControl).join('\n')
}

/** Writes a value as indented JSON to stdout; values from other nodes cannot drive the terminal (jsonText). */
export function sayJson(value: unknown): void {
  process.stdout.write(`${jsonText(value, 2)}\n`)
}

/** `direct <addr>` or `relay <relay id>`. */
export function formatPath(path: PathInfo | undefined): string {
  if (path === undefined) return 'not connected'
  return path.kind === 'relay' ? `relay ${path.relay ?? path.addr}` : `direct ${path.addr}`
}

/** Aligned two-column rows. */
export function table(rows: [string, string][], indent = ''): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`.trimEnd()).join('\n')
}

/** Prints an error the CLI way: `warren: <message>` and `hint: <hint>` on stderr, or JSON with --json. */
export function printError(err: WarrenError, json: boolean): void {
  if (json) {
    process.stderr.write(`${jsonText({ error: err.toJSON() }, 2)}\n`)
    return
  }
  // messages may quote what a peer sent (a refusal's reason); the line breaks of a message listing several problems
  // (config errors) stay
  process.stderr.write(`warren: ${printable(err.message)}\n`)
  if (err.hint !== undefined) process.stderr.write(`hint: ${printable(err.hint)}\n`)
}
