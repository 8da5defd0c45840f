/**
 * HTTP/1.1 over a byte duplex, for `fetch` through a service: the request head, then its body (Content-Length when
 * the caller set one, otherwise chunked), while the response head and body are read at the same time. The answer is
 * a standard `Response` whose body streams; a body cut short (fewer bytes than Content-Length, a chunked body
 * without its last chunk, or a reset) errors the body with ERR_STREAM_ABORTED instead of ending it.
 */
import type { WarrenError } from '../errors.ts'
import { ByteReader, protocolError, truncated } from './byte-reader.ts'
import type { ByteDuplex } from './byte-stream.ts'

/** Largest response head accepted, bytes. */
const MAX_HEAD = 64 * 1024

const enc = new TextEncoder()

/** Request headers the client sets itself. */
const OWN_HEADERS = new Set(['host', 'connection', 'transfer-encoding', 'keep-alive'])

function head(request: Request, host: string, length: string | null): Uint8Array {
  const url = new URL(request.url)
  let text = `${request.method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n`
  request.headers.forEach((value, name) => {
    if (!OWN_HEADERS.has(name)) text += `${name}: ${value}\r\n`
  })
  if (request.body !== null && length === null) text += 'transfer-encoding: chunked\r\n'
  return enc.encode(`${text}\r\n`)
}

async function sendBody(request: Request, writer: WritableStreamDefaultWriter<Uint8Array>, chunked: boolean) {
  if (request.body !== null) {
    const reader = request.body.getReader()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      if (value.byteLength === 0) continue
      if (chunked) await writer.write(enc.encode(`${value.byteLength.toString(16)}\r\n`))
      await writer.write(value)
      if (chunked) await writer.write(enc.encode('\r\n'))
    }
    if (chunked) await writer.write(enc.encode('0\r\n\r\n'))
  }
}

/** Sends `request` on `duplex` and resolves with the response once its head arrived. */
export async function fetchOver(duplex: ByteDuplex, request: Request, host: string): Promise<Response> {
  const writer = duplex.writable.getWriter()
  const length = request.headers.get('content-length')
  await writer.write(head(request, host, length))
  const upload = sendBody(request, writer, request.body !== null && length === null)
  let uploadError: Error | undefined
  upload.catch((err: Error) => {
    uploadError = err
  })
  // our FIN goes out only after the whole answer, as a browser's own fetch never half-closes: many HTTP servers
  // (Node's among them) stop answering when the request side closes
  const finish = async (): Promise<void> => {
    await upload.catch(() => {})
    await writer.close().catch(() => {})
  }
  const reader = new ByteReader(duplex.readable)
  let status: number
  let statusText: string
  const headers = new Headers()
  try {
    for (;;) {
      const line = await reader.line('\r\n', MAX_HEAD, 'response head')
      const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(line)
      if (m === null) throw protocolError(`status line "${line.slice(0, 80)}"`)
      status = Number(m[1])
      statusText = m[2] ?? ''
      const block = await reader.line('\r\n\r\n', MAX_HEAD, 'response head')
      if (status >= 100 && status < 200 && status !== 101) continue // 100 Continue and the like
      for (const h of block === '' ? [] : block.split('\r\n')) {
        const colon = h.indexOf(':')
        if (colon <= 0) throw protocolError(`header line "${h.slice(0, 80)}"`)
        headers.append(h.slice(0, colon).trim(), h.slice(colon + 1).trim())
      }
      break
    }
  } catch (err) {
    duplex.abort(err as Error)
    throw uploadError !== undefined && (err as WarrenError).code === 'ERR_STREAM_ABORTED' ? uploadError : err
  }
  const noBody = request.method === 'HEAD' || status === 204 || status === 304
  const te = headers.get('transfer-encoding')
  const cl = headers.get('content-length')
  let body: ReadableStream<Uint8Array> | null = null
  if (!noBody) {
    const source =
      te !== null && /chunked/i.test(te)
        ? chunkedBody(reader)
        : cl !== null
          ? lengthBody(reader, Number(cl))
          : untilEnd(reader)
    body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        try {
          const { value, done } = await source.next()
          if (done) {
            ctl.close()
            await finish()
          } else ctl.enqueue(value)
        } catch (err) {
          duplex.abort(err as Error)
          ctl.error(err)
        }
      },
      cancel(reason) {
        reader.cancel(reason instanceof Error ? reason : new Error('the response body was cancelled'))
      },
    })
  }
  if (body === null) void finish()
  return new Response(body, { status: status!, statusText: statusText!, headers })
}

async function* lengthBody(reader: ByteReader, length: number): AsyncGenerator<Uint8Array> {
  if (!Number.isSafeInteger(length) || length < 0) throw protocolError('Content-Length is not a number')
  let left = length
  while (left > 0) {
    if (reader.buffered.byteLength === 0 && !(await reader.fill())) {
      throw truncated(`the service closed the stream ${left} bytes before the end of a ${length}-byte body`)
    }
    const chunk = reader.take(Math.min(left, reader.buffered.byteLength))
    left -= chunk.byteLength
    yield chunk
  }
}

async function* chunkedBody(reader: ByteReader): AsyncGenerator<Uint8Array> {
  for (;;) {
    const size = Number.parseInt((await reader.line('\r\n', 1024, 'chunk size')).split(';')[0]!, 16)
    if (!Number.isSafeInteger(size) || size < 0) throw protocolError('a chunk size is not hexadecimal')
    if (size === 0) {
      while ((await reader.line('\r\n', MAX_HEAD, 'trailer')) !== '') {}
      return
    }
    yield* lengthBody(reader, size)
    if ((await reader.line('\r\n', 2, 'chunk end')) !== '') throw protocolError('a chunk does not end with CRLF')
  }
}

async function* untilEnd(reader: ByteReader): AsyncGenerator<Uint8Array> {
  for (;;) {
    if (reader.buffered.byteLength > 0) yield reader.take(reader.buffered.byteLength)
    if (!(await reader.fill())) return
  }
}
