/**
 * `warren connect`: a service on stdin/stdout, byte for byte — the shape OpenSSH's `ProxyCommand` wants.
 *
 * - Binary-safe: bytes pass through untouched, no encoding.
 * - Half-close: EOF on the input half-closes the stream (the service sees FIN and can still answer).
 * - Back-pressure both ways: a slow output slows the service's sending, a slow service slows reading the input.
 * - Ends when the service finishes sending: the returned promise resolves once the output has every byte.
 * - Honest: a stream cut before its end (the service or a daemon reset it, the connection was lost, a daemon
 *   stopped), or an output that cannot be written (EPIPE), rejects with ERR_STREAM_ABORTED naming the cause, and
 *   the stream is reset at the service. It never resolves on a partial transfer.
 *
 * @example
 * ```sh
 * ssh -o ProxyCommand='warren connect laptop/ssh' me@laptop
 * ```
 */
import type { Duplex, Readable, Writable } from 'node:stream'
import { WarrenError } from '../errors.ts'
import type { WarrenClient } from './client.ts'

export interface ConnectOptions {
  addrs?: string[]
  input?: Readable
  output?: Writable
}

function localFailure(what: string, err: Error): WarrenError {
  return new WarrenError('ERR_STREAM_ABORTED', `${what}: ${err.message}`, {
    hint: 'The stream was reset at the service; check what reads the output or feeds the input.',
    cause: err,
  })
}

/**
 * Joins an open service stream to `input`/`output`. Resolves when the service ended its side and `output` has
 * flushed every byte (and, if `input` has ended, every byte of it went out); input not yet at its end by then is
 * dropped and the service's side reset, as `nc` does. Rejects (after resetting the stream) on any failure of the
 * stream, the input or the output.
 */
export function pipeStdio(stream: Duplex, input: Readable, output: Writable, what = 'the service'): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const done = (err?: Error): void => {
      if (settled) return
      settled = true
      input.off('data', onInput)
      input.pause()
      stream.off('data', onStreamData)
      output.off('drain', onOutputDrain)
      output.on('error', () => {}) // a later EPIPE must not crash the process
      input.on('error', () => {})
      stream.on('error', () => {})
      // after a clean end both ways this only closes the API socket; if the input has not ended yet, the service
      // gets a reset for the rest of it (it ended its side first, so it is done with us)
      stream.destroy(err)
      if (err === undefined) resolve()
      else reject(err)
    }

    // input → stream
    const onInput = (chunk: Buffer): void => {
      if (!stream.write(chunk)) input.pause()
    }
    input.on('data', onInput)
    stream.on('drain', () => {
      if (!settled) input.resume()
    })
    let inputEnded = false
    input.once('end', () => {
      inputEnded = true
      stream.end() // an END frame after the last byte: the service sees FIN
    })
    input.once('error', (err) => done(localFailure(`cannot read the input for ${what}`, err)))

    // stream → output
    const onStreamData = (chunk: Buffer): void => {
      if (!output.write(chunk)) stream.pause()
    }
    const onOutputDrain = (): void => {
      stream.resume()
    }
    stream.on('data', onStreamData)
    output.on('drain', onOutputDrain)
    stream.once('end', () => {
      // every byte has been handed to output; resolve once it is flushed, and once all of the input that was read
      // to its end has gone out too (a cut there is an 'error')
      output.write(Buffer.alloc(0), (err) => {
        if (err) done(localFailure(`cannot write the output of ${what}`, err))
        else if (inputEnded && !stream.writableFinished) stream.once('finish', () => done())
        else done()
      })
    })
    stream.once('error', (err) => done(err))
    output.once('error', (err) => done(localFailure(`cannot write the output of ${what}`, err)))
  })
}

/** Opens `node`/`service` through the daemon and connects it to stdin/stdout (or the given streams). */
export async function connectStdio(
  client: WarrenClient,
  node: string,
  service: string,
  opts: ConnectOptions = {},
): Promise<void> {
  const stream = await client.openStream(node, service, opts.addrs ? { addrs: opts.addrs } : {})
  await pipeStdio(stream, opts.input ?? process.stdin, opts.output ?? process.stdout, `${node}/${service}`)
}
