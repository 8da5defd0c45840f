/** `warren ls <node>`: the services another node lets this node use (its `_services` method), as a table or JSON. */
import type { Command } from 'commander'
import { escapeControl } from '../log.ts'
import type { RpcServiceInfo } from '../rpc/builtins.ts'
import { collect, say, sayJson, withClient } from './common.ts'

export function formatServices(node: string, services: RpcServiceInfo[]): string {
  if (services.length === 0) return `${node} offers no service to this node`
  const width = Math.max(7, ...services.map((s) => s.name.length))
  const lines = [`${'SERVICE'.padEnd(width)}  TYPE  DESCRIPTION`]
  // a description is the other node's text, and one line: escaped with its line breaks, so it cannot add rows
  for (const s of services) {
    lines.push(`${s.name.padEnd(width)}  ${s.type.padEnd(4)}  ${escapeControl(s.description ?? '')}`.trimEnd())
  }
  return lines.join('\n')
}

export function register(program: Command): void {
  program
    .command('ls')
    .description('list the services another node lets this node use')
    .argument('<node>', 'alias, node id (either form) or ticket')
    .option('--addr <multiaddr>', 'an address of the node, repeatable (when config `peers` has none)', collect)
    .option('--json', 'print as JSON')
    .action(async (node: string, opts: { addr?: string[]; json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (c) => {
        const services = await c.ls(node, opts.addr ? { addrs: opts.addr } : {})
        if (opts.json === true) sayJson(services)
        else say(formatServices(node, services))
      })
    })
}
