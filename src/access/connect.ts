/**
 * `warren connect`: a service on stdin/stdout, byte for byte — the shape OpenSSH's `ProxyCommand` wants.
 *
 * - Binary-safe: bytes pass through untouched, no encoding.
 * - Half-close: EOF on the input half-closes the stream (the service sees FIN and can still answer).
 * - Ends when the service finishes sending: the returned promise settles once the output has every byte.
 *
 * @example
 * ```sh
 * ssh -o ProxyCommand='warren connect laptop/ssh' me@laptop
 * ```
 */
import type { Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import type { WarrenClient } from '../client/client.ts'

export interface ConnectOptions {
  addrs?: string[]
  input?: Readable
  output?: Writable
}

/** Pipes an already-open service stream to `input`/`output`; resolves when the remote ends its side. */
export function pipeStdio(socket: Socket, input: Readable, output: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const done = (err?: Error): void => {
      if (settled) return
      settled = true
      input.unpipe(socket)
      if (err === undefined) resolve()
      else {
        socket.destroy()
        reject(err)
      }
    }
    input.pipe(socket) // ends the socket's write side (FIN) when input reaches EOF
    socket.pipe(output, { end: false })
    socket.once('end', () => {
      // every byte has been handed to output; wait until it is flushed
      output.write(Buffer.alloc(0), () => done())
    })
    socket.once('error', (err) => done(err))
    socket.once('close', (hadError) => {
      if (hadError) done(new Error('the stream was reset'))
    })
    output.once('error', (err) => done(err))
    input.once('error', (err) => done(err))
  })
}

/** Opens `node`/`service` through the daemon and connects it to stdin/stdout (or the given streams). */
export async function connectStdio(
  client: WarrenClient,
  node: string,
  service: string,
  opts: ConnectOptions = {},
): Promise<void> {
  const socket = await client.openStream(node, service, opts.addrs ? { addrs: opts.addrs } : {})
  await pipeStdio(socket, opts.input ?? process.stdin, opts.output ?? process.stdout)
  socket.destroy()
}
