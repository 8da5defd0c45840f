/**
 * Reads a WHATWG byte stream by lines and by counts (HTTP heads, chunked bodies, WebSocket frames): bytes are
 * buffered until taken. Malformed input is ERR_PROTOCOL, input that stops early ERR_STREAM_ABORTED.
 */
import { WarrenError } from '../errors.ts'

const enc = new TextEncoder()

export class ByteReader {
  #buf: Uint8Array = new Uint8Array(0)
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  constructor(readable: ReadableStream<Uint8Array>) {
    this.#reader = readable.getReader()
  }
  /** More bytes into the buffer; false at the far side's FIN. */
  async fill(): Promise<boolean> {
    const { value, done } = await this.#reader.read()
    if (done) return false
    if (this.#buf.byteLength === 0) this.#buf = value
    else {
      const b = new Uint8Array(this.#buf.byteLength + value.byteLength)
      b.set(this.#buf)
      b.set(value, this.#buf.byteLength)
      this.#buf = b
    }
    return true
  }
  get buffered(): Uint8Array {
    return this.#buf
  }
  take(n: number): Uint8Array {
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    return out
  }
  /** The bytes up to and without the first CRLF (or CRLFCRLF), consuming both. */
  async line(sep: string, max: number, what: string): Promise<string> {
    for (;;) {
      const at = indexOf(this.#buf, sep)
      if (at >= 0) {
        const text = new TextDecoder().decode(this.#buf.subarray(0, at))
        this.take(at + sep.length)
        return text
      }
      if (this.#buf.byteLength > max) throw protocolError(`the ${what} is longer than ${max} bytes`)
      if (!(await this.fill())) throw truncated(`the service closed the stream inside the ${what}`)
    }
  }
  cancel(reason: Error): void {
    void this.#reader.cancel(reason).catch(() => {})
  }
}

function indexOf(buf: Uint8Array, sep: string): number {
  const s = enc.encode(sep)
  outer: for (let i = 0; i + s.length <= buf.byteLength; i++) {
    for (let j = 0; j < s.length; j++) if (buf[i + j] !== s[j]) continue outer
    return i
  }
  return -1
}

export function protocolError(message: string): WarrenError {
  return new WarrenError('ERR_PROTOCOL', `the service answered with malformed HTTP: ${message}`, {
    hint: 'Is the service an HTTP/1.1 server?',
  })
}

export function truncated(message: string): WarrenError {
  return new WarrenError('ERR_STREAM_ABORTED', message, {
    hint: 'The service or its node closed the connection before the whole answer was sent. Try again.',
  })
}
