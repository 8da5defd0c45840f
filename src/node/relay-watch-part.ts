/**
 * The relay-watch part of a node: warnings when a relayed connection closes with its data limit used up
 * (src/relay/client/limited-connections.ts) and the watch of the links to the configured relays
 * (src/relay/client/relay-links.ts), both from start until stop.
 */
import { part, type Startable } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'
import { watchLimitedConnections } from '../relay/client/limited-connections.ts'
import { type RelayLinks, watchRelayLinks } from '../relay/client/relay-links.ts'

/** A part that starts both watches, handing the relay-link watch to `onLinks`, and stops them. */
export function relayWatchPart(
  libp2p: WarrenLibp2p,
  relays: readonly string[],
  log: Logger,
  onLinks: (links: RelayLinks) => void,
): Startable {
  let unwatch = (): void => {}
  return part({
    start: () => {
      const unwatchLimited = watchLimitedConnections(libp2p, log)
      const links = watchRelayLinks(libp2p, { relays, log })
      onLinks(links)
      unwatch = () => {
        unwatchLimited()
        links.stop()
      }
    },
    stop: () => unwatch(),
  })
}
