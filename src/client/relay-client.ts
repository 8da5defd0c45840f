/**
 * A client for a running relay's local API (`warren relay status`): one JSON-RPC 2.0 request per connection over the
 * relay's Unix socket, in the same wire format as the daemon's API (src/daemon/api-protocol.ts).
 *
 * @example
 * ```ts
 * const status = await relayCall(resolveRelayHome('/srv/relay'), 'relay.status')
 * console.log(status.totals.bytesRelayed)
 * ```
 */
import { readFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { LineSplitter, MAX_ANSWER_BYTES, type RpcError } from '../daemon/api-protocol.ts'
import type { RelayApiMethods } from '../daemon/relay-daemon.ts'
import { WarrenError } from '../errors.ts'
import { type RelayHome, relaySocketPath } from '../relay/server/home-dir.ts'

/** The API socket of a relay home: `api.socket` from relay.json if set, else `<home>/relay.sock`. */
export function relayApiSocket(home: RelayHome): string {
  try {
    const json = JSON.parse(readFileSync(home.config, 'utf8')) as { api?: { socket?: unknown } }
    if (typeof json?.api?.socket === 'string' && json.api.socket !== '') return relaySocketPath(home, json.api.socket)
  } catch {
    // no relay.json: the default socket
  }
  return home.socket
}

function notRunning(home: RelayHome, cause: unknown): WarrenError {
  return new WarrenError('ERR_DAEMON_NOT_RUNNING', `no Warren relay is running for ${home.dir}`, {
    hint: 'Start one with `warren relay` (use --home or WARREN_RELAY_HOME for another relay home).',
    details: { home: home.dir },
    cause,
  })
}

/** Calls one relay API method and resolves to its result; errors come back as WarrenErrors. */
export function relayCall<M extends keyof RelayApiMethods>(
  home: RelayHome,
  method: M,
  opts: { socket?: string; timeoutMs?: number } = {},
): Promise<RelayApiMethods[M]['result']> {
  const path = opts.socket ?? relayApiSocket(home)
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path })
    const lines = new LineSplitter(MAX_ANSWER_BYTES)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new WarrenError('ERR_TIMEOUT', `the relay did not answer ${method} within ${opts.timeoutMs ?? 10_000} ms`))
    }, opts.timeoutMs ?? 10_000)
    const finish = (err: Error | undefined, value?: unknown): void => {
      clearTimeout(timer)
      socket.destroy()
      if (err === undefined) resolve(value as RelayApiMethods[M]['result'])
      else reject(err)
    }
    socket.once('connect', () => socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method })}\n`))
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') finish(notRunning(home, err))
      else finish(new WarrenError('ERR_API', `cannot use the relay API socket ${path}: ${err.message}`, { cause: err }))
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        lines.push(chunk)
      } catch (err) {
        finish(new WarrenError('ERR_API', `the relay's answer to ${method}: ${(err as Error).message}`))
        return
      }
      const line = lines.shift()
      if (line === undefined) return
      let msg: { result?: unknown; error?: RpcError }
      try {
        msg = JSON.parse(line)
      } catch {
        finish(new WarrenError('ERR_API', 'the relay answered with something that is not JSON'))
        return
      }
      if (msg.error !== undefined) {
        finish(
          msg.error.data === undefined
            ? new WarrenError('ERR_API', msg.error.message)
            : WarrenError.fromJSON(msg.error.data),
        )
      } else finish(undefined, msg.result)
    })
    socket.on('close', () =>
      finish(
        new WarrenError('ERR_API', 'the relay closed the API connection before answering', {
          hint: 'It may have stopped; check its log.',
        }),
      ),
    )
  })
}
