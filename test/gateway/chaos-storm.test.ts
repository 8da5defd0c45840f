/**
 * A storm of HTTP requests through the gateway (`/http/<node>/<service>/`) and the HTTP proxy (absolute form), on
 * keep-alive connections, that end in every way: whole downloads (Content-Length, chunked, and ended by the
 * service's close), uploads, slow readers, responses the service cuts mid-body (reset or FIN), clients that abort
 * mid-body, requests the service never answers and the client gives up on. Real daemons (`a` serves; `b` with the
 * gateway's fast path, `c` with the full path), Node's HTTP client with a keep-alive agent, a keep-alive service
 * (http-chaos.ts): connections from the client and service streams behind them are reused from one request to the
 * next, whatever the last one went through.
 *
 * Every whole exchange must arrive whole (SHA-256 of the body, the exact answer to an upload): a response that
 * belonged to another request, or bytes left over from a cut one, would show here. Every cut response must reach the
 * client as an error or an error status, never as a complete 200. Afterwards no request is still pending at the
 * service (a client that closed its connection before the response began abandons its request on both paths,
 * whatever the service does), none of its connections is left half closed, the serving node holds one service
 * stream per connection to the service and the client's node no more than it (the idle ones in the gateway's
 * pools); the next requests are whole. The mix comes from a seeded generator (WARREN_CHAOS_SEED repeats a run,
 * WARREN_CHAOS_ONLY=blob,cut runs only the scenarios named).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Agent, request } from 'node:http'
import { describe, it } from 'node:test'
import { eventually } from '../support/eventually.ts'
import { useChaosPair } from '../support/http-chaos.ts'
import { generator, planOf, runPlan, seedOf } from '../support/seeded.ts'
import { ByteSource, MiB, pump } from '../support/transfer.ts'

const KiB = 1024
const REQUESTS = 300
const AT_ONCE = 24
const SOCKETS = 16
const REQUEST_LIMIT_MS = 30_000

interface Got {
  status: number
  bytes: number
  sha256: string
  text: string
  /** 'end' for a complete response; otherwise what ended it. */
  ending: string
}

interface Ask {
  method?: string
  body?: ByteSource
  /** Abort once this many body bytes have come. */
  abortAfter?: number
  /** Abort after this long, ms. */
  abortInMs?: number
  /** Read the body in bursts (150 ms on, 100 off). */
  slow?: boolean
}

/** One request through `base` (the gateway's prefix for the service) on `agent`; resolves with how it went. */
function ask(agent: Agent, access: string, base: string, path: string, opts: Ask = {}): Promise<Got> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve) => {
    const h = createHash('sha256')
    const got: Got = { status: 0, bytes: 0, sha256: '', text: '', ending: '' }
    const timers: NodeJS.Timeout[] = []
    let done = false
    const finish = (ending: string): void => {
      if (done) return
      done = true
      for (const t of timers) clearTimeout(t)
      got.ending = ending
      got.sha256 = h.digest('hex')
      resolve(got)
    }
    // an absolute base (`http://web.a.warren`) asks the access port as an HTTP proxy, with that Host
    const proxyHost = base.startsWith('http://') ? new URL(base).host : undefined
    const req = request({
      host: access.slice(0, i),
      port: Number(access.slice(i + 1)),
      path: `${base}${path}`,
      method: opts.method ?? 'GET',
      agent,
      setHost: proxyHost === undefined,
      headers: {
        ...(proxyHost === undefined ? {} : { host: proxyHost }),
        ...(opts.body === undefined ? {} : { 'content-length': opts.body.size }),
      },
    })
    req.on('error', (err) => finish(`error: ${err.message}`))
    req.on('response', (res) => {
      got.status = res.statusCode ?? 0
      if (opts.slow === true) {
        const flip = (on: boolean): void => {
          if (done) return
          if (on) res.resume()
          else res.pause()
          timers.push(setTimeout(() => flip(!on), on ? 150 : 100))
        }
        flip(true)
      }
      res.on('data', (d: Buffer) => {
        h.update(d)
        got.bytes += d.length
        if (got.text.length < 200) got.text += d.toString('latin1')
        if (opts.abortAfter !== undefined && got.bytes >= opts.abortAfter) {
          req.destroy()
          finish('aborted by the client')
        }
      })
      res.on('end', () => finish(res.complete ? 'end' : 'incomplete'))
      res.on('error', (err) => finish(`error: ${err.message}`))
      res.on('close', () => finish(res.complete ? 'end' : 'closed before the end'))
    })
    if (opts.abortInMs !== undefined) {
      timers.push(
        setTimeout(() => {
          req.destroy()
          finish('aborted by the client')
        }, opts.abortInMs),
      )
    }
    if (opts.body === undefined) req.end()
    else void pump(opts.body, req).catch(() => {})
  })
}

type Rand = (max: number) => number
type Asker = (path: string, opts?: Ask) => Promise<Got>
type Scenario = (ask: Asker, r: Rand) => Promise<string | undefined>

const whole = (what: string, got: Got, size: number, seed: number): string | undefined =>
  got.status === 200 && got.ending === 'end' && got.bytes === size && got.sha256 === ByteSource.digest(size, seed)
    ? undefined
    : `${what} ${size} B (seed ${seed}): ${got.status}, ${got.bytes} B, ending "${got.ending}"`

const scenarios: Record<string, Scenario> = {
  async blob(a, r) {
    const [size, seed] = [r(512 * KiB), r(256)]
    return whole('blob', await a(`/blob/${size}/${seed}`), size, seed)
  },
  async chunks(a, r) {
    const [size, seed] = [r(512 * KiB), r(256)]
    return whole('chunked', await a(`/chunks/${size}/${seed}`), size, seed)
  },
  async closeDelimited(a, r) {
    const [size, seed] = [r(512 * KiB), r(256)]
    return whole('close-delimited', await a(`/closed/${size}/${seed}`), size, seed)
  },
  async upload(a, r) {
    const [size, seed] = [r(512 * KiB), r(256)]
    const got = await a('/hash', { method: 'POST', body: new ByteSource(size, seed) })
    const want = `${size} ${ByteSource.digest(size, seed)}`
    return got.status === 200 && got.ending === 'end' && got.text === want
      ? undefined
      : `upload ${size} B: ${got.status} "${got.text.slice(0, 80)}", ending "${got.ending}"`
  },
  async slowReader(a, r) {
    const [size, seed] = [MiB + r(MiB), r(256)]
    return whole('slow reader', await a(`/blob/${size}/${seed}`, { slow: true }), size, seed)
  },
  async cut(a, r) {
    const size = 256 * KiB
    const at = r(size)
    const how = r(2) === 0 ? 'rst' : 'fin'
    const got = await a(`/cut/${size}/${at}/${how}`)
    // an error status (the cut came before the head went on) is loud too; a complete 200 is a lie
    return got.status === 200 && got.ending === 'end'
      ? `cut at ${at} (${how}): the client got a complete 200 of ${got.bytes} B`
      : undefined
  },
  async clientAborts(a, r) {
    await a(`/blob/${4 * MiB}/${r(256)}`, { abortAfter: r(MiB) })
    return undefined
  },
  async clientGivesUp(a, r) {
    await a('/hang', { abortInMs: 50 + r(250) })
    return undefined
  },
}

async function storm(asker: Asker, seed: number): Promise<{ problems: string[]; mix: Record<string, number> }> {
  const next = generator(seed)
  const r: Rand = (max) => Math.floor(next() * max)
  const { plan, mix } = planOf(Object.keys(scenarios), REQUESTS, r)
  const problems = await runPlan(plan, AT_ONCE, REQUEST_LIMIT_MS, (name) => scenarios[name]!(asker, r))
  return { problems, mix }
}

describe('a storm of HTTP requests ending every way, through the gateway on keep-alive connections', () => {
  const chaos = useChaosPair()

  for (const [path, form, base] of [
    ['fast', 'gateway', '/http/a/web'],
    ['full', 'gateway', '/http/a/web'],
    ['fast', 'HTTP proxy', 'http://web.a.warren'],
    ['full', 'HTTP proxy', 'http://web.a.warren'],
  ] as const) {
    it(`${form}, ${path} path: ${REQUESTS} requests, ${AT_ONCE} at a time on ${SOCKETS} connections: whole or failed loudly`, async () => {
      const access = path === 'fast' ? chaos.pair().fast : chaos.pair().full
      const client = path === 'fast' ? chaos.pair().b : chaos.pair().c!
      const agent = new Agent({ keepAlive: true, maxSockets: SOCKETS })
      const asker: Asker = (p, opts) => ask(agent, access, base, p, opts)
      const seed = seedOf()
      try {
        const { problems, mix } = await storm(asker, seed)
        assert.deepEqual(problems, [], `seed ${seed}, mix ${JSON.stringify(mix)}`)
      } finally {
        agent.destroy()
      }
      const a = await chaos.pair().a.client()
      const c = await client.client()
      try {
        await eventually(
          async () => {
            const [served, asked] = [(await a.status()).streams.incoming.active, (await c.status()).streams.active]
            const open = {
              served,
              asked,
              toService: chaos.target().open(),
              pending: chaos.target().pending(),
              halfClosed: chaos.target().halfClosed(),
            }
            // idle streams stay in the gateway's pools for their idle time; a request still pending at the service
            // would be one abandoned by its client and kept, a half-closed connection one whose end was not passed on
            const held = open.pending + open.halfClosed
            assert.ok(served === open.toService && asked <= served && held === 0, JSON.stringify(open))
            return true
          },
          {
            timeoutMs: 15_000,
            message: 'no request pending at the service, none of its connections half closed, a stream for each',
          },
        )
      } finally {
        a.close()
        c.close()
      }
      const again = new Agent({ keepAlive: true, maxSockets: 4 })
      try {
        for (let k = 0; k < 8; k++) {
          const size = 64 * KiB * (k + 1)
          assert.equal(whole('after', await ask(again, access, base, `/blob/${size}/${k}`), size, k), undefined)
        }
      } finally {
        again.destroy()
      }
    })
  }
})
