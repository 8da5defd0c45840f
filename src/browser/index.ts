/**
 * `warren/browser`: a Warren node in a page or a worker. Bundled by scripts/build-browser.ts into
 * dist/browser/warren.js; see docs/browser.md.
 *
 * @packageDocumentation
 */
export { ERROR_CODES, type ErrorCode, isWarrenError, WarrenError } from '../errors.ts'
export { decodeTicket, encodeTicket } from '../identity/ticket.ts'
export type { ByteDuplex } from './byte-stream.ts'
export { loadOrCreateKey } from './key-store.ts'
export {
  BrowserNode,
  type BrowserNodeOptions,
  type HandlerContext,
  type InviteRedeemed,
  type LookupAnswer,
  type StreamHandler,
  startBrowserNode,
} from './node.ts'
export type { ServiceWebSocket, WebSocketCloseEvent } from './websocket.ts'
