/**
 * The benchmark's transfer protocol, used the same way over TCP and over libp2p streams:
 *
 * request = mode (1 byte: `U` upload or `D` download) | length (u64 big-endian)
 * - `U`: the client then sends `length` bytes; the server answers the count (u64) once it has them all.
 * - `D`: the server sends `length` bytes, then closes its side.
 *
 * Echo services simply send back what they receive.
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { Uint8ArrayList } from 'uint8arraylist'

export const HEADER_BYTES = 9
/** Size of each write; one random buffer reused so generating data costs nothing. */
export const CHUNK = 256 * 1024
export const PAYLOAD = randomBytes(CHUNK)

export function encodeRequest(mode: 'U' | 'D', length: number): Uint8Array {
  const b = Buffer.alloc(HEADER_BYTES)
  b[0] = mode.charCodeAt(0)
  b.writeBigUInt64BE(BigInt(length), 1)
  return b
}

export function decodeRequest(b: Uint8Array): { mode: 'U' | 'D'; length: number } {
  const mode = String.fromCharCode(b[0]!)
  if (mode !== 'U' && mode !== 'D') throw new Error(`bad mode ${mode}`)
  return { mode, length: Number(Buffer.from(b).readBigUInt64BE(1)) }
}

export function encodeCount(n: number): Uint8Array {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

/**
 * The server side of the protocol over any byte stream, fed with what arrives: calls `download(n)` once a `D` request
 * is read and `uploaded(n)` once all bytes of a `U` request are in. Returns true when it wants no more input.
 */
export function xferServer(on: {
  download: (bytes: number) => void
  uploaded: (bytes: number) => void
}): (data: Uint8Array | Uint8ArrayList) => boolean {
  const header = new Uint8ArrayList()
  let mode: 'U' | 'D' | undefined
  let want = 0
  let got = 0
  return (data) => {
    if (mode === undefined) {
      header.append(data)
      if (header.byteLength < HEADER_BYTES) return false
      const req = decodeRequest(header.subarray(0, HEADER_BYTES))
      mode = req.mode
      want = req.length
      got = header.byteLength - HEADER_BYTES
      if (mode === 'D') {
        on.download(want)
        return true
      }
    } else got += data.byteLength
    if (got < want) return false
    on.uploaded(got)
    return true
  }
}

function connected(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true, allowHalfOpen: true })
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}

async function writeAll(s: Socket, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; ) {
    const n = Math.min(CHUNK, bytes - sent)
    const ok = s.write(n === CHUNK ? PAYLOAD : PAYLOAD.subarray(0, n))
    sent += n
    if (!ok) await new Promise<void>((resolve) => s.once('drain', resolve))
  }
}

/** Uploads `bytes` over TCP to an xfer server; resolves to the ms from the first byte to the server's count. */
export async function tcpUpload(host: string, port: number, bytes: number, timeoutMs: number): Promise<number> {
  const s = await connected(host, port)
  try {
    const answer = new Promise<number>((resolve, reject) => {
      const parts: Buffer[] = []
      s.on('data', (d: Buffer) => {
        parts.push(d)
        const all = Buffer.concat(parts)
        if (all.length >= 8) resolve(Number(all.readBigUInt64BE(0)))
      })
      s.once('error', reject)
      s.once('end', () => reject(new Error('server closed before answering')))
      setTimeout(() => reject(new Error(`upload did not finish in ${timeoutMs} ms`)), timeoutMs).unref()
    })
    const t0 = performance.now()
    s.write(encodeRequest('U', bytes))
    await writeAll(s, bytes)
    const count = await answer
    const ms = performance.now() - t0
    if (count !== bytes) throw new Error(`server counted ${count} bytes, sent ${bytes}`)
    return ms
  } finally {
    s.destroy()
  }
}

/** Downloads `bytes` over TCP from an xfer server; resolves to the ms from the request to the last byte. */
export async function tcpDownload(host: string, port: number, bytes: number, timeoutMs: number): Promise<number> {
  const s = await connected(host, port)
  try {
    return await new Promise<number>((resolve, reject) => {
      let got = 0
      const t0 = performance.now()
      s.on('data', (d: Buffer) => {
        got += d.length
        if (got === bytes) resolve(performance.now() - t0)
        if (got > bytes) reject(new Error(`received ${got} bytes, asked for ${bytes}`))
      })
      s.once('error', reject)
      s.once('end', () => {
        if (got !== bytes) reject(new Error(`stream ended after ${got} of ${bytes} bytes`))
      })
      setTimeout(() => reject(new Error(`download did not finish in ${timeoutMs} ms`)), timeoutMs).unref()
      s.write(encodeRequest('D', bytes))
    })
  } finally {
    s.destroy()
  }
}

/**
 * Connection set-up: `count` times, connect to an echo service, send one byte and wait for it to come back.
 * Each sample is the ms from starting the TCP connect to the echoed byte.
 */
export async function tcpSetup(host: string, port: number, count: number, timeoutMs: number): Promise<number[]> {
  const samples: number[] = []
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < count; i++) {
    if (Date.now() > deadline) throw new Error(`set-up loop passed ${timeoutMs} ms after ${i} connections`)
    samples.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = performance.now()
        const s = connect({ host, port, noDelay: true })
        const timer = setTimeout(() => {
          s.destroy()
          reject(new Error(`connection ${i}: no echo within 10 s`))
        }, 10_000)
        s.once('connect', () => s.write('x'))
        s.once('data', () => {
          const ms = performance.now() - t0
          clearTimeout(timer)
          s.destroy()
          resolve(ms)
        })
        s.once('error', (err) => {
          clearTimeout(timer)
          reject(err)
        })
      }),
    )
  }
  return samples
}
