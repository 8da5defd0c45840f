/**
 * One log line for an HTTP exchange through the gateway or the HTTP proxy that did not end as a complete
 * response: who (method, path, service and node), bytes each way, how long, and why — the HTTP counterpart of
 * `describePipeEnd` (src/p2p/pipe.ts) for tunnels.
 */

export interface ExchangeEnd {
  method: string
  path: string
  /** `service "web" on node 12D3…`. */
  describe: string
  /** Request body bytes sent towards the service. */
  bytesUp: number
  /** Response body bytes sent to the client (as the service framed them). */
  bytesDown: number
  durationMs: number
}

/** `HTTP GET /http/web/laptop/x to service "web" on node 12D3…: 120 bytes up, 1048576 down, 2012 ms, ended abnormally: …`. */
export function describeExchangeEnd(e: ExchangeEnd, reason: string): string {
  const path = e.path.length > 100 ? `${e.path.slice(0, 97)}...` : e.path
  return (
    `HTTP ${e.method} ${path} to ${e.describe}: ${e.bytesUp} bytes up, ${e.bytesDown} down, ${e.durationMs} ms, ` +
    `ended abnormally: ${reason}`
  )
}
