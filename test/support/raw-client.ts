/**
 * Raw TCP exchanges for the local-user and cap tests: send bytes (optionally FIN), read to the end, report what
 * came back (status line, body SHA-256) and how the connection ended. `asUser` runs the same exchange in a child
 * process of another local user (setpriv, root only).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RawResult {
  bytes: number
  status: string
  bodySha256: string
  bodyBytes: number
  /** SHA-256 of every byte received. */
  allSha256: string
  /** 'end' (clean FIN), or 'error:<code>'. */
  ending: string
}

const CLIENT = `
import { connect } from 'node:net'
import { createHash } from 'node:crypto'
const [host, port, payload, fin] = process.argv.slice(2)
const chunks = []
let ending = 'end'
const s = connect(Number(port), host, () => { s.write(Buffer.from(payload, 'base64')); if (fin === '1') s.end() })
s.on('data', (d) => chunks.push(d))
s.on('error', (e) => { ending = 'error:' + e.code })
s.on('close', () => {
  const all = Buffer.concat(chunks)
  const at = all.indexOf('\\r\\n\\r\\n')
  const body = at < 0 ? Buffer.alloc(0) : all.subarray(at + 4)
  const status = all.subarray(0, Math.max(0, all.indexOf('\\r\\n'))).toString()
  process.stdout.write(JSON.stringify({ bytes: all.length, status, bodySha256: createHash('sha256').update(body).digest('hex'), bodyBytes: body.length, allSha256: createHash('sha256').update(all).digest('hex'), ending }))
})
setTimeout(() => { ending = 'timeout'; s.destroy() }, 20000).unref()
`

/** One exchange from this process. */
export function rawExchange(host: string, port: number, payload: Buffer, fin = false): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let ending = 'end'
    const s = connect(port, host, () => {
      s.write(payload)
      if (fin) s.end()
    })
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', (e: NodeJS.ErrnoException) => {
      ending = `error:${e.code}`
    })
    const timer = setTimeout(() => {
      ending = 'timeout'
      s.destroy()
    }, 20_000)
    s.on('close', () => {
      clearTimeout(timer)
      const all = Buffer.concat(chunks)
      const at = all.indexOf('\r\n\r\n')
      const body = at < 0 ? Buffer.alloc(0) : all.subarray(at + 4)
      resolve({
        bytes: all.length,
        status: all.subarray(0, Math.max(0, all.indexOf('\r\n'))).toString(),
        bodySha256: createHash('sha256').update(body).digest('hex'),
        bodyBytes: body.length,
        allSha256: createHash('sha256').update(all).digest('hex'),
        ending,
      })
    })
  })
}

let script: string | undefined

/** The same exchange from a child process running as `uid` (needs root). */
export async function rawExchangeAs(
  uid: number,
  host: string,
  port: number,
  payload: Buffer,
  fin = false,
): Promise<RawResult> {
  if (script === undefined) {
    const dir = await mkdtemp(join(tmpdir(), 'warren-raw-client-'))
    await chmod(dir, 0o755)
    script = join(dir, 'client.mjs')
    await writeFile(script, CLIENT, { mode: 0o644 })
  }
  const args = [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, script]
  const child = spawn('setpriv', [...args, host, String(port), payload.toString('base64'), fin ? '1' : '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const code = await new Promise<number | null>((r) => child.on('close', r))
  if (code !== 0) throw new Error(`client as uid ${uid} exited ${code}: ${err}`)
  return JSON.parse(out) as RawResult
}
