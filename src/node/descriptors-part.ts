/**
 * The open-file part of a node: its peer connections counted against the process's descriptor budget (each holds a
 * socket, as the local connections the budget admits do: src/open-files.ts), and a warning at start when the
 * configured stream limit cannot be reached under the open-file limit.
 */
import type { Config } from '../config/schema.ts'
import { part, type Startable } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import { type DescriptorBudget, descriptorShortfall, processDescriptors } from '../open-files.ts'
import type { WarrenLibp2p } from '../p2p/create.ts'

export function descriptorsPart(
  libp2p: Pick<WarrenLibp2p, 'getConnections'>,
  maxPeerConnections: number,
  limits: Pick<Config['limits'], 'maxStreams'>,
  log: Logger,
  fds: DescriptorBudget = processDescriptors(),
): Startable {
  let uncount = (): void => {}
  return part({
    start: () => {
      uncount = fds.countOthers(() => libp2p.getConnections().length, maxPeerConnections)
      const limit = Number.isFinite(fds.limit) ? fds.limit : undefined
      const short = descriptorShortfall(limits.maxStreams, limit, 'limits.maxStreams', fds.reserve)
      if (short !== undefined) log('warn', short)
    },
    stop: () => uncount(),
  })
}
