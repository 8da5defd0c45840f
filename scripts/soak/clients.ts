/**
 * One transfer through one of the four loopback paths (`warren forward`, SOCKS5 on the access port, the HTTP gateway,
 * a spawned `warren connect`), either direction, judged by SHA-256 and by how it ended on each side:
 * - `whole`: every byte arrived, SHA-256 equal, ended cleanly;
 * - `error`: it ended with an error someone could see (which side, which message);
 * - `silent`: it ended cleanly (clean end of stream, exit status 0, a cleanly ended upload at the service) with the
 *   wrong length or hash: the bug the soak hunts;
 * - `stalled`: it did not end within its time limit and was killed.
 * - `fin-on-kill` (set by the caller): an upload the service saw end cleanly but short because the serving daemon was
 *   SIGKILLed: its kernel closed its sockets with a FIN, which no process can prevent (Node has no SO_LINGER).
 */
import type { ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { spawnCli } from '../../test/support/cli.ts'
import { ByteSource, readPaced } from '../../test/support/transfer.ts'
import { digestOf, paceOf, type SoakServers, type UploadSeen } from './servers.ts'

export const PATHS = ['forward', 'socks', 'gateway', 'connect'] as const
export type PathName = (typeof PATHS)[number]
export type Dir = 'down' | 'up'

export interface Spec {
  id: number
  path: PathName
  dir: Dir
  /** `fast`, `<n>mibps`, `bursts`: the download reader's pace, or the service's for an upload. */
  pace: string
  size: number
  seed: number
  limitMs: number
}

export type Verdict = 'whole' | 'error' | 'silent' | 'stalled' | 'fin-on-kill'

export interface Outcome {
  spec: Spec
  verdict: Verdict
  /** Bytes that reached the receiving end. */
  bytes: number
  /** How the client saw it end, when not cleanly with the right bytes. */
  client?: string
  /** How the service saw an upload end, when not whole. */
  server?: string
  startedAt: number
  endedAt: number
}

export interface Ctx {
  access: string
  forwardPort: number
  bHome: string
  servers: SoakServers
}

/** A transfer in flight: its progress (bytes sent or received by the client) and a way to kill the client. */
export interface Live {
  spec: Spec
  progress: number
  startedAt: number
  kill(reason: string): void
  done: Promise<Outcome>
}

/** A minimal SOCKS5 CONNECT (no auth) to `host:port` through `access`; resolves with the open tunnel. */
function socks5(access: string, host: string, port: number, onSocket: (s: Socket) => void): Promise<Socket> {
  const i = access.lastIndexOf(':')
  const s = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)) })
  onSocket(s)
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    let stage = 0
    const fail = (msg: string): void => {
      s.destroy()
      reject(new Error(msg))
    }
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      if (stage === 0 && buf.length >= 2) {
        if (buf[1] !== 0) return void fail(`socks5: method ${buf[1]}`)
        buf = buf.subarray(2)
        stage = 1
        const h = Buffer.from(host)
        s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, h.length]), h, Buffer.from([port >> 8, port & 0xff])]))
      }
      if (stage === 1 && buf.length >= 5) {
        if (buf[1] !== 0) return void fail(`socks5: reply ${buf[1]}`)
        const len = 4 + (buf[3] === 1 ? 4 : buf[3] === 4 ? 16 : 1 + buf[4]!) + 2
        if (buf.length < len) return
        s.off('data', onData)
        s.off('close', onClose)
        s.pause()
        if (buf.length > len) s.unshift(buf.subarray(len))
        resolve(s)
      }
    }
    const onClose = (): void => fail('socks5: closed during the handshake')
    s.on('data', onData)
    s.once('close', onClose)
    s.once('error', (err) => fail(err.message))
    s.once('connect', () => s.write(Buffer.from([5, 1, 0])))
  })
}

function tcpOpen(port: number, onSocket: (s: Socket) => void): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port })
  onSocket(s)
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** Writes `ByteSource(size, seed)` to `out` with back-pressure, counting what was written. */
function pumpCounting(size: number, seed: number, out: Writable, count: (n: number) => void): Promise<void> {
  const src = new ByteSource(size, seed)
  return new Promise((resolve, reject) => {
    const go = (): void => {
      for (let c = src.next(); c !== null; c = src.next()) {
        count(c.length)
        if (!out.write(c)) return void out.once('drain', go)
      }
      out.end(() => resolve())
    }
    out.once('error', reject)
    out.once('close', () => reject(new Error('closed while sending')))
    go()
  })
}

/** Everything `r` yields until its end; rejects on an error or a close without end. */
function collect(r: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    r.on('data', (d: Buffer) => parts.push(d))
    r.once('end', () => resolve(Buffer.concat(parts).toString('utf8')))
    r.once('error', reject)
    r.once('close', () => reject(new Error('closed without end')))
  })
}

const msg = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!

/** The CLI's error message: its first line that is not the hint. */
function errorLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('hint:'))
  return lines[0]?.trim() ?? ''
}

/** Starts `spec` on its path. */
export function startTransfer(ctx: Ctx, spec: Spec): Live {
  const startedAt = Date.now()
  let killedFor: string | undefined
  let socket: Socket | undefined
  let child: ChildProcess | undefined
  let httpReq: { destroy(): void } | undefined
  const live: Live = {
    spec,
    progress: 0,
    startedAt,
    kill(reason) {
      if (killedFor !== undefined) return
      killedFor = reason
      // a raw TCP client that closes (FIN) is indistinguishable from one that finished, for any proxy: a killed
      // client is modelled by a reset; the HTTP client's close is a short body the gateway can tell; `warren connect`
      // gets a real SIGKILL
      socket?.resetAndDestroy()
      httpReq?.destroy()
      child?.kill('SIGKILL')
    },
    done: Promise.resolve() as unknown as Promise<Outcome>,
  }
  const count = (n: number): void => {
    live.progress += n
  }
  const hold = (s: Socket): void => {
    socket = s
    s.on('error', () => {})
  }
  const timer = setTimeout(() => live.kill('stalled'), spec.limitMs)
  const expected = spec.dir === 'down' ? digestOf(spec.size, spec.seed) : ''
  const { path, dir, size, seed, pace } = spec

  const finishDown = (r: { bytes: number; sha256: string; ending: string }, clean: boolean, why: string): Outcome => {
    const right = r.bytes === size && r.sha256 === expected
    const base = { spec, bytes: r.bytes, startedAt, endedAt: Date.now() }
    if (killedFor === 'stalled') return { ...base, verdict: 'stalled', client: `stalled at ${r.bytes} bytes` }
    if (clean && r.ending === 'end' && right) return { ...base, verdict: 'whole' }
    if (clean && r.ending === 'end' && killedFor === undefined)
      return { ...base, verdict: 'silent', client: `clean end at ${r.bytes}/${size} bytes, sha256 differs` }
    return { ...base, verdict: 'error', client: killedFor ?? why }
  }

  const finishUp = async (answer: string | undefined, clientErr: string | undefined): Promise<Outcome> => {
    // the service's end is awaited: 2 s after a whole upload, 15 s after a failed one that reached the service (time to
    // drain what the daemons buffered at its pace), then it is left hanging, which counts as stalled
    const ok = answer?.startsWith('OK') === true && clientErr === undefined && killedFor === undefined
    const waitMs = ok || !ctx.servers.started.has(spec.id) ? 2_000 : 15_000
    let seen: UploadSeen | undefined
    for (const until = Date.now() + waitMs; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      seen = ctx.servers.uploads.get(spec.id)
      if (seen !== undefined) break
    }
    const hanging = seen === undefined && ctx.servers.started.has(spec.id)
    ctx.servers.uploads.delete(spec.id)
    ctx.servers.started.delete(spec.id)
    const base = { spec, bytes: seen?.bytes ?? 0, startedAt, endedAt: Date.now() }
    const server =
      seen === undefined
        ? hanging
          ? `saw the upload start, and no end within ${waitMs / 1000} s (left hanging)`
          : 'saw no upload (it never arrived)'
        : seen.ending === 'end'
          ? undefined
          : seen.ending
    if (seen !== undefined && seen.ending === 'end' && !seen.whole) {
      const clientSaw = killedFor ?? clientErr
      const server = `clean end at ${seen.bytes}/${size} bytes, sha256 differs`
      return { ...base, verdict: 'silent', server, ...(clientSaw === undefined ? {} : { client: clientSaw }) }
    }
    if (killedFor === 'stalled' || hanging)
      return { ...base, verdict: 'stalled', client: killedFor ?? clientErr ?? 'ended', ...(server ? { server } : {}) }
    if (seen?.whole && answer?.startsWith('OK') && clientErr === undefined) return { ...base, verdict: 'whole' }
    const client = killedFor ?? clientErr ?? `answer ${JSON.stringify((answer ?? '').slice(0, 80))}`
    return { ...base, verdict: 'error', client, ...(server ? { server } : {}) }
  }

  const run = async (): Promise<Outcome> => {
    if (path === 'forward' || path === 'socks') {
      let s: Socket
      try {
        s =
          path === 'forward' ? await tcpOpen(ctx.forwardPort, hold) : await socks5(ctx.access, 'soak.a.warren', 1, hold)
      } catch (err) {
        return dir === 'down'
          ? finishDown({ bytes: 0, sha256: '', ending: msg(err) }, false, msg(err))
          : finishUp(undefined, msg(err))
      }
      if (dir === 'down') {
        s.write(`D ${size} ${seed}\n`)
        const p = readPaced(s, paceOf(pace))
        s.on('data', (d: Buffer) => count(d.length))
        s.resume()
        const r = await p
        s.destroy()
        return finishDown(r, true, r.ending)
      }
      s.write(`U ${spec.id} ${size} ${seed} ${pace}\n`)
      const answer = collect(s)
      answer.catch(() => {})
      s.resume() // the SOCKS5 handshake left the tunnel paused
      try {
        await pumpCounting(size, seed, s, count)
        return await finishUp(await answer, undefined)
      } catch (err) {
        s.destroy()
        return finishUp(undefined, msg(err))
      }
    }
    if (path === 'gateway') {
      const i = ctx.access.lastIndexOf(':')
      const opts = { host: ctx.access.slice(0, i), port: Number(ctx.access.slice(i + 1)), agent: false as const }
      if (dir === 'down') {
        return new Promise<Outcome>((resolve) => {
          const req = request({ ...opts, path: `/http/a/web/blob/${size}/${seed}` }, (res) => {
            if (res.statusCode !== 200) {
              const why = `HTTP ${res.statusCode} ${res.headers['x-warren-error'] ?? ''}`.trim()
              res.resume()
              return resolve(finishDown({ bytes: 0, sha256: '', ending: why }, false, why))
            }
            const p = readPaced(res, paceOf(pace))
            res.on('data', (d: Buffer) => count(d.length))
            void p.then((r) => resolve(finishDown(r, true, r.ending)))
          })
          httpReq = req
          req.on('error', (err) => resolve(finishDown({ bytes: 0, sha256: '', ending: msg(err) }, false, msg(err))))
          req.end()
        })
      }
      return new Promise<Outcome>((resolve) => {
        let settled = false
        const settle = (answer: string | undefined, err: string | undefined): void => {
          if (settled) return
          settled = true
          void finishUp(answer, err).then(resolve)
        }
        const headers = { 'content-length': size, 'x-id': spec.id, 'x-size': size, 'x-seed': seed, 'x-pace': pace }
        const req = request({ ...opts, method: 'POST', path: '/http/a/web/upload', headers }, (res) => {
          collect(res).then(
            (body) => settle(res.statusCode === 200 ? body : `HTTP ${res.statusCode} ${body}`, undefined),
            (err) => settle(undefined, msg(err)),
          )
        })
        httpReq = req
        req.on('error', (err) => settle(undefined, msg(err)))
        pumpCounting(size, seed, req, count).catch((err) => settle(undefined, msg(err)))
      })
    }
    // warren connect
    const c = spawnCli(['connect', 'a/soak'], { home: ctx.bHome })
    child = c
    let stderr = ''
    c.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString('utf8')
    })
    c.stdin!.on('error', () => {})
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
      c.on('close', (code, signal) => r({ code, signal })),
    )
    const why = (e: { code: number | null; signal: string | null }): string =>
      e.code === 0 ? 'exit 0' : `exit ${e.code ?? e.signal}: ${errorLine(stderr)}`
    if (dir === 'down') {
      c.stdin!.end(`D ${size} ${seed}\n`)
      const p = readPaced(c.stdout!, paceOf(pace))
      c.stdout!.on('data', (d: Buffer) => count(d.length))
      const [r, e] = await Promise.all([p, exited])
      return finishDown(r, e.code === 0, e.code === 0 ? r.ending : why(e))
    }
    c.stdin!.write(`U ${spec.id} ${size} ${seed} ${pace}\n`)
    const answer = collect(c.stdout!)
    answer.catch(() => {})
    const sent = pumpCounting(size, seed, c.stdin!, count).then(
      () => undefined,
      (err: unknown) => msg(err),
    )
    const [e, sendErr] = await Promise.all([exited, sent])
    const text = await answer.catch(() => undefined)
    return finishUp(e.code === 0 ? text : undefined, e.code === 0 ? sendErr : why(e))
  }

  live.done = run().finally(() => clearTimeout(timer))
  return live
}
