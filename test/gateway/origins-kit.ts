/**
 * What the origin tests share (origins-*.test.ts): a raw HTTP/1.1 client (every header exactly as the test wrote
 * it), request heads, and the exact refusal pages of the Host and origin rules.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'

export interface Reply {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Sends `head` (+ `body`) on a fresh connection with `Connection: close` and reads the whole answer. */
export function raw(access: string, head: string, body?: Buffer): Promise<Reply> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)) })
    const got: Buffer[] = []
    socket.on('data', (d: Buffer) => got.push(d))
    socket.on('error', reject)
    socket.on('close', () => {
      let all = Buffer.concat(got)
      // interim answers (100 Continue) come first
      while (/^HTTP\/1\.1 1\d\d /.test(all.subarray(0, 13).toString())) all = all.subarray(all.indexOf('\r\n\r\n') + 4)
      const end = all.indexOf('\r\n\r\n')
      if (end < 0) return reject(new Error(`no response head in ${JSON.stringify(all.toString())}`))
      const lines = all.subarray(0, end).toString('latin1').split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines.slice(1))
        headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      const rest = all.subarray(end + 4)
      const n = headers['content-length'] === undefined ? rest.length : Number(headers['content-length'])
      assert.equal(rest.length, n, 'the whole body arrived')
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers, body: rest })
    })
    socket.write(head.replace(/\r\n$/, 'Connection: close\r\n\r\n'))
    if (body !== undefined) socket.write(body)
  })
}

export const req = (
  method: string,
  target: string,
  host: string | undefined,
  extra: Record<string, string> = {},
  version = '1.1',
): string =>
  `${method} ${target} HTTP/${version}\r\n${host === undefined ? '' : `Host: ${host}\r\n`}${Object.entries(extra)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`

/** What the test web app's `/info` saw. */
export const info = (r: Reply): { method: string; url: string; headers: Record<string, string> } => {
  assert.equal(r.status, 200, r.body.toString())
  return JSON.parse(r.body.toString())
}

const HOST_HINT =
  'What to do: Use http://127.0.0.1:<port>/, http://<service>.<node>.localhost:<port>/, or add the name to proxy.hosts in config.json.'
const CROSS_HINT =
  'What to do: Open the service at its own origin, http://<service>.<node>.localhost:<port>/; pages of one service cannot use another through the access port.'

export const hostRefusal = (host: string, why: string): string =>
  `421 Misdirected Request\n\nERR_HOST_NOT_SERVED: the access port does not serve the host name ${JSON.stringify(host)}: ${why}\n\n${HOST_HINT}\n`

export const crossRefusal = (what: string, why: string): string =>
  `403 Forbidden\n\nERR_CROSS_ORIGIN: ${what} refused: ${why}\n\n${CROSS_HINT}\n`
