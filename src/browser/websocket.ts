/**
 * A WebSocket (RFC 6455) to an HTTP service, carried on a service stream: the HTTP/1.1 upgrade, then frames (ours
 * masked, as a client's must be). Shaped like the browser's own `WebSocket`: `send`, `close`, and the events
 * `message` (a MessageEvent whose data is a string or an ArrayBuffer), `close` (with `code`, `reason`, `wasClean`)
 * and `error`. A stream that is cut is an `error` and a `close` with code 1006, never a clean close.
 */
import { sha1 } from '@noble/hashes/legacy.js'
import { WarrenError } from '../errors.ts'
import { ByteReader, protocolError } from './byte-reader.ts'
import type { ByteDuplex } from './byte-stream.ts'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** Largest message accepted; a larger one closes the socket with 1009. */
const MAX_MESSAGE = 64 * 1024 * 1024
const enc = new TextEncoder()

const Op = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
}

export interface WebSocketCloseEvent extends Event {
  code: number
  reason: string
  wasClean: boolean
}

export class ServiceWebSocket extends EventTarget {
  /** 1 open, 2 closing, 3 closed (the browser WebSocket's numbers). */
  readyState = 1
  /** The subprotocol the service chose, or ''. */
  readonly protocol: string
  readonly #duplex: ByteDuplex
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>
  readonly #reader: ByteReader
  #sentClose = false
  #writes: Promise<void> = Promise.resolve()

  constructor(duplex: ByteDuplex, reader: ByteReader, protocol: string) {
    super()
    this.#duplex = duplex
    this.#writer = duplex.writable.getWriter()
    this.#reader = reader
    this.protocol = protocol
    // events start on a later task, as the browser's WebSocket's do: listeners added right after the upgrade
    // resolved see the first message
    setTimeout(() => void this.#readLoop(), 0)
  }

  /** Sends a text (string) or binary message. */
  send(data: string | Uint8Array | ArrayBuffer): void {
    if (this.readyState !== 1) throw new WarrenError('ERR_STREAM_ABORTED', 'the WebSocket is closing or closed')
    if (typeof data === 'string') this.#frame(Op.TEXT, enc.encode(data))
    else this.#frame(Op.BINARY, data instanceof Uint8Array ? data : new Uint8Array(data))
  }

  /** Starts the closing handshake; `close` fires once the service answered it. */
  close(code = 1000, reason = ''): void {
    if (this.readyState !== 1) return
    this.readyState = 2
    this.#sendClose(code, reason)
  }

  #sendClose(code: number, reason: string): void {
    if (this.#sentClose) return
    this.#sentClose = true
    const r = enc.encode(reason).subarray(0, 123)
    const body = new Uint8Array(2 + r.byteLength)
    new DataView(body.buffer).setUint16(0, code)
    body.set(r, 2)
    this.#frame(Op.CLOSE, body)
  }

  #frame(op: number, payload: Uint8Array): void {
    const n = payload.byteLength
    const ext = n < 126 ? 0 : n < 65_536 ? 2 : 8
    const out = new Uint8Array(2 + ext + 4 + n)
    out[0] = 0x80 | op
    out[1] = 0x80 | (ext === 0 ? n : ext === 2 ? 126 : 127)
    const view = new DataView(out.buffer)
    if (ext === 2) view.setUint16(2, n)
    if (ext === 8) view.setBigUint64(2, BigInt(n))
    const mask = crypto.getRandomValues(new Uint8Array(4))
    out.set(mask, 2 + ext)
    const at = 2 + ext + 4
    for (let i = 0; i < n; i++) out[at + i] = payload[i]! ^ mask[i & 3]!
    this.#writes = this.#writes.then(() => this.#writer.write(out)).catch((err: Error) => this.#fail(err))
  }

  async #readLoop(): Promise<void> {
    let parts: Uint8Array[] = []
    let size = 0
    let textMessage = false
    try {
      for (;;) {
        const head = await this.#take(2)
        const fin = (head[0]! & 0x80) !== 0
        const op = head[0]! & 0x0f
        if ((head[1]! & 0x80) !== 0) throw protocolError('a WebSocket frame from the service is masked')
        let n = head[1]! & 0x7f
        if (n === 126) n = new DataView((await this.#take(2)).slice().buffer).getUint16(0)
        else if (n === 127) n = Number(new DataView((await this.#take(8)).slice().buffer).getBigUint64(0))
        if (size + n > MAX_MESSAGE) {
          this.#sendClose(1009, 'message too big')
          throw new WarrenError('ERR_PROTOCOL', `a WebSocket message is larger than ${MAX_MESSAGE} bytes`)
        }
        const payload = (await this.#take(n)).slice()
        if (op === Op.CLOSE) {
          const code = payload.byteLength >= 2 ? new DataView(payload.buffer).getUint16(0) : 1005
          const reason = new TextDecoder().decode(payload.subarray(2))
          this.#sendClose(code === 1005 ? 1000 : code, '')
          await this.#writes
          await this.#writer.close().catch(() => {})
          this.#closed(code, reason, true)
          return
        }
        if (op === Op.PING) {
          this.#frame(Op.PONG, payload)
          continue
        }
        if (op === Op.PONG) continue
        if (op === Op.TEXT || op === Op.BINARY) {
          textMessage = op === Op.TEXT
          parts = []
          size = 0
        } else if (op !== Op.CONT) throw protocolError(`unknown WebSocket opcode ${op}`)
        parts.push(payload)
        size += payload.byteLength
        if (!fin) continue
        const all = new Uint8Array(size)
        let off = 0
        for (const p of parts) {
          all.set(p, off)
          off += p.byteLength
        }
        parts = []
        size = 0
        const data = textMessage ? new TextDecoder().decode(all) : all.buffer
        this.dispatchEvent(new MessageEvent('message', { data }))
      }
    } catch (err) {
      this.#fail(err as Error)
    }
  }

  async #take(n: number): Promise<Uint8Array> {
    while (this.#reader.buffered.byteLength < n) {
      if (!(await this.#reader.fill())) {
        throw new WarrenError('ERR_STREAM_ABORTED', 'the service ended the WebSocket stream without a close frame')
      }
    }
    return this.#reader.take(n)
  }

  #fail(err: Error): void {
    if (this.readyState === 3) return
    this.#duplex.abort(err)
    this.dispatchEvent(Object.assign(new Event('error'), { error: err }))
    this.#closed(1006, err.message, false)
  }

  #closed(code: number, reason: string, wasClean: boolean): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.dispatchEvent(Object.assign(new Event('close'), { code, reason, wasClean }))
  }
}

/** Upgrades `duplex` (a fresh service stream) to a WebSocket on `path`; rejects unless the service answers 101. */
export async function upgradeWebSocket(
  duplex: ByteDuplex,
  host: string,
  path: string,
  protocols: readonly string[] = [],
): Promise<ServiceWebSocket> {
  const key = base64(crypto.getRandomValues(new Uint8Array(16)))
  let head = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n`
  head += `sec-websocket-key: ${key}\r\nsec-websocket-version: 13\r\n`
  if (protocols.length > 0) head += `sec-websocket-protocol: ${protocols.join(', ')}\r\n`
  const writer = duplex.writable.getWriter()
  const reader = new ByteReader(duplex.readable)
  try {
    await writer.write(enc.encode(`${head}\r\n`))
    writer.releaseLock()
    const status = await reader.line('\r\n', 64 * 1024, 'upgrade answer')
    const lines = (await reader.line('\r\n\r\n', 64 * 1024, 'upgrade answer')).split('\r\n')
    const header = (name: string): string | undefined =>
      lines
        .find((l) => l.toLowerCase().startsWith(`${name}:`))
        ?.slice(name.length + 1)
        .trim()
    const code = /^HTTP\/1\.1 (\d{3})/.exec(status)?.[1]
    if (code !== '101') {
      throw new WarrenError(
        'ERR_PROTOCOL',
        `the service answered "${status.slice(0, 80)}" instead of a WebSocket upgrade`,
        {
          hint: `Check the path (${path}): the service must accept WebSocket connections there.`,
        },
      )
    }
    const accept = base64(sha1(enc.encode(key + GUID)))
    if (header('sec-websocket-accept') !== accept) throw protocolError('the WebSocket accept key is wrong')
    return new ServiceWebSocket(duplex, reader, header('sec-websocket-protocol') ?? '')
  } catch (err) {
    duplex.abort(err as Error)
    throw err
  }
}
