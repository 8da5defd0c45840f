/**
 * Warren as a library: run a node in your process, talk to a running daemon, or spin up a testnet.
 *
 * @example Run a node and reach a service on another one
 * ```ts
 * import { WarrenNode, validateConfig, generateNodeKey } from 'warren'
 *
 * const node = await WarrenNode.start({ privateKey: await generateNodeKey(), config: validateConfig({}) })
 * const stream = await node.openService('<ticket or node id>', 'web')
 * ```
 *
 * @example Talk to the daemon of a Warren home (what the CLI does)
 * ```ts
 * import { WarrenClient } from 'warren/client'
 *
 * const client = new WarrenClient()          // $WARREN_HOME or ~/.warren
 * console.log((await client.status()).id)
 * ```
 *
 * @packageDocumentation
 */
export { WarrenClient } from './client/client.ts'
export { loadConfig, validateConfig } from './config/load.ts'
export type { Config, ConfigInput, ServiceConfig } from './config/schema.ts'
export { runDaemon } from './daemon/daemon.ts'
export { ERROR_CODES, type ErrorCode, isWarrenError, WarrenError } from './errors.ts'
export { generateNodeKey, loadNodeKey, saveNodeKey } from './identity/keys.ts'
export { formatNodeId, formatNodeIdBase36, parseNodeId } from './identity/node-id.ts'
export { decodeTicket, encodeTicket, type Ticket } from './identity/ticket.ts'
export type * from './node/types.ts'
export { WarrenNode, type WarrenNodeApi, type WarrenNodeStartOptions } from './node/warren-node.ts'
export { createTestnet, type Testnet, type TestnetOptions } from './testing/testnet.ts'
export { VERSION } from './version.ts'
