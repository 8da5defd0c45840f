/**
 * `warren call <node>.<method> [params]`: calls a method of another node over `/warren/rpc/1.0.0` and prints its
 * result as JSON. `<node>` is an alias, a node id in either form or a ticket; params are JSON (an object or an array).
 */
import type { Command } from 'commander'
import { WarrenError } from '../errors.ts'
import { collect, sayJson, withClient } from './common.ts'

/** Splits `laptop._ping` at its first dot; ERR_USAGE when either side is missing. */
export function parseCallTarget(text: string): { node: string; method: string } {
  const dot = text.indexOf('.')
  if (dot <= 0 || dot === text.length - 1) {
    throw new WarrenError('ERR_USAGE', `"${text}" is not <node>.<method>`, {
      hint: 'For example `warren call laptop._ping`, or `warren call laptop._info`.',
    })
  }
  return { node: text.slice(0, dot), method: text.slice(dot + 1) }
}

/** Parses the params argument: JSON, an object or an array. */
export function parseParams(text: string | undefined): unknown {
  if (text === undefined) return undefined
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new WarrenError('ERR_USAGE', `params are not JSON: ${(err as Error).message}`, {
      hint: `Quote them for the shell, for example '{"n": 1}' or '[1, 2]'.`,
    })
  }
  if (typeof v !== 'object' || v === null) {
    throw new WarrenError('ERR_USAGE', 'params must be a JSON object or array', {
      hint: `For example '{"n": 1}' or '[1, 2]'.`,
    })
  }
  return v
}

export function register(program: Command): void {
  program
    .command('call')
    .description('call a method of another node (JSON-RPC over /warren/rpc/1.0.0) and print its result')
    .argument('<node.method>', 'for example laptop._ping, laptop._info, laptop._services, or a method of your own')
    .argument('[params]', 'the params as JSON, an object or an array')
    .option('--addr <multiaddr>', 'an address of the node, repeatable (when config `peers` has none)', collect)
    .option('--json', 'print the whole answer as JSON (with the round trip and the path)')
    .addHelpText(
      'after',
      '\nBuilt-in methods: _ping (round trip and path), _info (version, uptime, protocols, methods you may call),\n' +
        '_services (the services you may use; `warren ls <node>` shows them as a table). See docs/rpc.md.',
    )
    .action(async (target: string, params: string | undefined, opts: { addr?: string[]; json?: boolean }, cmd) => {
      const { node, method } = parseCallTarget(target)
      const p = parseParams(params)
      await withClient(cmd, async (c) => {
        const answer = await c.callNode(node, method, p, opts.addr ? { addrs: opts.addr } : {})
        sayJson(opts.json === true ? answer : answer.result)
      })
    })
}
