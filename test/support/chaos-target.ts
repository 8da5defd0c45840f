/**
 * A TCP target whose behaviour each connection chooses in its first 9 bytes (a mode byte, a 32-bit parameter and a
 * 32-bit seed, big-endian), so that one service can end its connections in every way a real one does: clean
 * exchanges, resets at any point, answers without reading, silence. `chaosPreamble` builds the 9 bytes.
 *
 * | mode | the target                                                                                  |
 * | ---- | ------------------------------------------------------------------------------------------- |
 * | `E`  | echoes everything after the preamble, ends after the client's FIN                             |
 * | `H`  | reads to the client's FIN, answers `<bytes> <sha256 hex>`, ends                                 |
 * | `F`  | sends `param` bytes of `ByteSource(param, seed)` at once and ends; ignores what comes           |
 * | `R`  | resets the connection once `param` bytes after the preamble have come                           |
 * | `X`  | resets the connection as soon as the preamble has come                                          |
 * | `S`  | reads nothing for `param` ms, then reads and discards to the end; never answers                   |
 *
 * A client that ends before a whole preamble gets a clean end and nothing else.
 */
import { createHash } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import { ByteSource, listen, pump } from './transfer.ts'

export type ChaosMode = 'E' | 'H' | 'F' | 'R' | 'X' | 'S'

export function chaosPreamble(mode: ChaosMode, param = 0, seed = 0): Buffer {
  const b = Buffer.alloc(9)
  b.write(mode, 0, 'latin1')
  b.writeUInt32BE(param, 1)
  b.writeUInt32BE(seed, 5)
  return b
}

export interface ChaosTarget {
  port: number
  /** Connections open now, by mode (`?` before a whole preamble). */
  open(): Record<string, number>
  /** Connections accepted so far. */
  accepted(): number
  close(): Promise<void>
}

function serve(s: Socket): void {
  let head = Buffer.alloc(0)
  const onHead = (d: Buffer): void => {
    head = Buffer.concat([head, d])
    if (head.length < 9) return
    s.off('data', onHead)
    s.off('end', onEarlyEnd)
    const mode = String.fromCharCode(head[0]!)
    ;(s as Socket & { chaosMode?: string }).chaosMode = mode
    const param = head.readUInt32BE(1)
    const seed = head.readUInt32BE(5)
    const rest = head.subarray(9)
    begin(s, mode, param, seed, rest)
  }
  const onEarlyEnd = (): void => {
    s.end()
  }
  s.on('data', onHead)
  s.on('end', onEarlyEnd)
}

function begin(s: Socket, mode: string, param: number, seed: number, rest: Buffer): void {
  switch (mode) {
    case 'E':
      if (rest.length > 0) s.write(rest)
      s.pipe(s)
      return
    case 'H': {
      const h = createHash('sha256').update(rest)
      let n = rest.length
      s.on('data', (d: Buffer) => {
        h.update(d)
        n += d.length
      })
      s.on('end', () => s.end(`${n} ${h.digest('hex')}`))
      return
    }
    case 'F':
      s.resume()
      void pump(new ByteSource(param, seed), s).catch(() => {})
      return
    case 'R': {
      let n = rest.length
      const check = (): void => {
        if (n >= param) s.resetAndDestroy()
      }
      s.on('data', (d: Buffer) => {
        n += d.length
        check()
      })
      check()
      return
    }
    case 'X':
      s.resetAndDestroy()
      return
    case 'S':
      // a service busy elsewhere: reads nothing for `param` ms, then reads and discards, never answering
      s.pause()
      setTimeout(() => {
        s.on('data', () => {})
        s.on('end', () => s.end())
        s.resume()
      }, param).unref()
      return
    default:
      s.resetAndDestroy()
  }
}

export async function chaosTarget(): Promise<ChaosTarget> {
  let accepted = 0
  const server = createServer({ allowHalfOpen: true }, (s) => {
    accepted++
    s.on('error', () => {})
    serve(s)
  })
  const { port, sockets, close } = await listen(server)
  return {
    port,
    open: () => {
      const by: Record<string, number> = {}
      for (const s of sockets) {
        const m = (s as Socket & { chaosMode?: string }).chaosMode ?? '?'
        by[m] = (by[m] ?? 0) + 1
      }
      return by
    },
    accepted: () => accepted,
    close,
  }
}
