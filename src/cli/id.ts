/**
 * `warren id`: the node id (base58 and base36), a ticket and the addresses. With a daemon running the ticket
 * carries its live addresses; without one, it is built from the key and the config's announce/listen addresses.
 */
import type { Command } from 'commander'
import { WarrenClient } from '../client/client.ts'
import { isWarrenError } from '../errors.ts'
import type { NodeIdentity } from '../node/types.ts'
import { homeOf, say, sayJson, table } from './common.ts'

export function register(program: Command): void {
  program
    .command('id')
    .description("print this node's id (base58 and base36), a ticket and its addresses")
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nWorks without a daemon (it reads the key); with a daemon running, the ticket carries its live addresses.\n' +
        'Give the ticket to other nodes: `warren forward <ticket>/<service> …` or `"peers": {"name": "<ticket>"}`.',
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const home = homeOf(cmd)
      let identity: NodeIdentity
      let live = true
      try {
        const client = await WarrenClient.connect({ home })
        try {
          identity = await client.id()
        } finally {
          client.close()
        }
      } catch (err) {
        if (!isWarrenError(err, 'ERR_DAEMON_NOT_RUNNING')) throw err
        const { offlineIdentity } = await import('./home-setup.ts')
        identity = await offlineIdentity(home)
        live = false
      }
      if (opts.json === true) return sayJson({ ...identity, live })
      say(
        table([
          ['node id', identity.id],
          ['base36', identity.idBase36],
          ['ticket', identity.ticket],
          ['short ticket', `${identity.shortTicket}  (id and home relay; discovery finds the rest)`],
        ]),
      )
      if (identity.addrs.length === 0) {
        say(
          live
            ? 'addresses  (none: the daemon listens on no address)'
            : 'addresses  (none known: start the daemon with `warren up` for a ticket with its live addresses)',
        )
      } else {
        say(`addresses${live ? '' : ' (from config.json; the daemon is not running)'}`)
        for (const a of identity.addrs) say(`  ${a}`)
      }
    })
}
