/**
 * How a Warren error reaches a client of the access port, in the client's own protocol: an HTTP status and a
 * plain-text page naming the code, the message and the fix; or a SOCKS5 reply code (RFC 1928 §6).
 */
import type { ErrorCode, WarrenError } from '../errors.ts'

/** SOCKS5 reply codes. */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const

interface Reply {
  http: number
  socks: number
}

const REPLIES: Partial<Record<ErrorCode, Reply>> = {
  ERR_NOT_WARREN_NAME: { http: 403, socks: SocksReply.NOT_ALLOWED },
  ERR_BAD_NAME: { http: 400, socks: SocksReply.HOST_UNREACHABLE },
  ERR_BAD_REQUEST: { http: 400, socks: SocksReply.GENERAL_FAILURE },
  ERR_BAD_GATEWAY_PATH: { http: 400, socks: SocksReply.GENERAL_FAILURE },
  ERR_GATEWAY_DISABLED: { http: 404, socks: SocksReply.GENERAL_FAILURE },
  ERR_NO_SUCH_PAGE: { http: 404, socks: SocksReply.GENERAL_FAILURE },
  ERR_BAD_NODE_ID: { http: 404, socks: SocksReply.HOST_UNREACHABLE },
  ERR_BAD_TICKET: { http: 404, socks: SocksReply.HOST_UNREACHABLE },
  ERR_UNKNOWN_PEER: { http: 404, socks: SocksReply.HOST_UNREACHABLE },
  ERR_NO_ADDRESSES: { http: 502, socks: SocksReply.HOST_UNREACHABLE },
  ERR_LOOKUP_FAILED: { http: 502, socks: SocksReply.HOST_UNREACHABLE },
  ERR_DIAL_FAILED: { http: 502, socks: SocksReply.HOST_UNREACHABLE },
  ERR_UNKNOWN_SERVICE: { http: 404, socks: SocksReply.CONNECTION_REFUSED },
  ERR_NOT_AUTHORIZED: { http: 403, socks: SocksReply.NOT_ALLOWED },
  ERR_TARGET_UNREACHABLE: { http: 502, socks: SocksReply.CONNECTION_REFUSED },
  ERR_OVERLOADED: { http: 503, socks: SocksReply.GENERAL_FAILURE },
  ERR_TOO_MANY_STREAMS: { http: 503, socks: SocksReply.GENERAL_FAILURE },
  ERR_TIMEOUT: { http: 504, socks: SocksReply.TTL_EXPIRED },
  ERR_PROTOCOL: { http: 502, socks: SocksReply.GENERAL_FAILURE },
  ERR_PROXY_AUTH: { http: 407, socks: SocksReply.NOT_ALLOWED },
  ERR_HEADERS_TOO_LARGE: { http: 431, socks: SocksReply.GENERAL_FAILURE },
  ERR_HOST_NOT_SERVED: { http: 421, socks: SocksReply.NOT_ALLOWED },
  ERR_CROSS_ORIGIN: { http: 403, socks: SocksReply.NOT_ALLOWED },
  ERR_UNKNOWN_ADDRESSES: { http: 403, socks: SocksReply.NOT_ALLOWED },
  ERR_USAGE: { http: 400, socks: SocksReply.COMMAND_NOT_SUPPORTED },
}

/** HTTP status for an error (500 for codes with no better match). */
export function httpStatusFor(err: WarrenError): number {
  return REPLIES[err.code]?.http ?? 500
}

/** SOCKS5 reply code for an error (general failure for codes with no better match). */
export function socksReplyFor(err: WarrenError): number {
  return REPLIES[err.code]?.socks ?? SocksReply.GENERAL_FAILURE
}

/** The plain-text body of an error page: status line, `CODE: message`, and the hint. */
export function errorPageText(status: number, statusText: string, err: WarrenError): string {
  const lines = [`${status} ${statusText}`, '', `${err.code}: ${err.message}`]
  if (err.hint !== undefined) lines.push('', `What to do: ${err.hint}`)
  return `${lines.join('\n')}\n`
}
