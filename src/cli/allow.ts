/**
 * `warren allow <service> <node>` and `warren deny <service> <node>`: add a node to a service's `allow` list or take
 * it off, through the daemon, which keeps the list where the service is defined (config.json, or state.json for a
 * service of `warren expose`) and applies it at once (src/daemon/admission.ts).
 */
import type { Command } from 'commander'
import type { AllowChange } from '../daemon/admission.ts'
import { say, sayJson, withClient } from './common.ts'
import { describeAllow } from './status.ts'

function report(r: AllowChange, verb: 'allow' | 'deny'): void {
  const where = r.source === 'config' ? 'config.json' : 'state.json'
  if (!r.changed) {
    say(
      verb === 'allow'
        ? `${r.node} may already use ${r.service} (allowed: ${describeAllow(r)}); nothing changed`
        : `${r.node} may not use ${r.service} already (allowed: ${describeAllow(r)}); nothing changed`,
    )
    return
  }
  say(
    verb === 'allow'
      ? `${r.node} may now use ${r.service} (saved in ${where}, applied)`
      : `${r.node} may no longer use ${r.service}; any streams it had open to it were reset (saved in ${where}, applied)`,
  )
  say(`allowed: ${describeAllow(r)}`)
}

export function register(program: Command): void {
  for (const verb of ['allow', 'deny'] as const) {
    program
      .command(verb)
      .description(
        verb === 'allow'
          ? "let a node use a service: add it to the service's allow list, saved and applied at once"
          : "stop a node using a service: take it off the service's allow list, saved and applied at once",
      )
      .argument('<service>', 'a service this node exposes')
      .argument('<node>', 'node id (12D3KooW… or k51…), ticket, or an alias in config `peers`')
      .option('--json', 'print the change as JSON')
      .addHelpText(
        'after',
        verb === 'allow'
          ? '\nA service without an allow list admits every node in `peers`; allowing one more node gives it a list of\n' +
              'those aliases plus the new node, so nobody admitted before loses access.'
          : '\nA service open to everyone (allow "*") cannot deny one node: replace "*" with the nodes to admit first.\n' +
              'Entries naming the node (its id in either form, or an alias of it) are all removed.',
      )
      .action(async (service: string, node: string, opts: { json?: boolean }, cmd: Command) => {
        const r = await withClient(cmd, (c) =>
          c.call(verb === 'allow' ? 'services.allow' : 'services.deny', { service, node }),
        )
        if (opts.json === true) return sayJson(r)
        report(r, verb)
      })
  }
}
