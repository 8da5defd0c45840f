/**
 * Tunnels: a client connection (SOCKS5 CONNECT or HTTP CONNECT) joined byte for byte to a service stream, each
 * holding one of the access port's per-node stream slots (backend.ts). Names are resolved here: `<service>.<node>.warren`, or a Warren
 * service address (IPv4/IPv6) from the DNS server's table.
 */
import { isIP, type Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'
import { describePipeEnd, pipeStream } from '../p2p/pipe.ts'
import type { AccessBackend } from './backend.ts'
import { parseServiceHost } from './names.ts'
import type { AddressTable } from './service-addresses.ts'
import { notAServiceAddress } from './socks5.ts'

export interface TunnelContext {
  backend: AccessBackend
  addresses: AddressTable
  tld: string
  openTimeoutMs: number
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void
}

/** Node and service for a host (name or service address); throws ERR_NOT_WARREN_NAME, ERR_BAD_NAME. */
export function serviceForHost(
  host: string,
  ctx: Pick<TunnelContext, 'addresses' | 'tld'>,
): {
  node: string
  service: string
} {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (isIP(bare) === 0) return parseServiceHost(bare, ctx.tld)
  const owner = ctx.addresses.lookup(bare)
  if (owner === undefined) throw notAServiceAddress(bare)
  if (owner.service === '') {
    throw new WarrenError('ERR_BAD_NAME', `${bare} is the address of node ${owner.node}, not of one of its services`, {
      hint: `Connect to <service>.<node>.${ctx.tld} (its own service address) instead.`,
      details: { host: bare },
    })
  }
  return { node: owner.node, service: owner.service }
}

/**
 * Opens the service stream for `host` and returns the function that joins a socket to it (call it once the
 * client has been told "connected"); throws a WarrenError when the stream cannot be had. `opts.port` (the port the
 * client connected to) travels in the request header.
 */
export async function openTunnel(
  host: string,
  ctx: TunnelContext,
  opts: { port?: number } = {},
): Promise<(socket: Socket, first?: Buffer) => void> {
  const { node, service } = serviceForHost(host, ctx)
  const ids = ctx.backend.resolveNode(node)
  const release = ctx.backend.acquire(ids.id)
  let stream: Stream
  try {
    const open: { signal: AbortSignal; port?: number } = { signal: AbortSignal.timeout(ctx.openTimeoutMs) }
    if (opts.port !== undefined) open.port = opts.port
    stream = await ctx.backend.openService(ids.id, service, open)
  } catch (err) {
    release()
    throw err
  }
  return (socket: Socket, first?: Buffer) => {
    if (socket.destroyed) {
      stream.abort(new Error('the client went away before the tunnel was set up'))
      release()
      return
    }
    const piped = pipeStream(stream, socket, first === undefined ? {} : { first })
    socket.resume()
    void piped.then((res) => {
      release()
      ctx.log(res.error === undefined ? 'debug' : 'warn', describePipeEnd(`tunnel to ${host}`, res))
    })
  }
}
