/**
 * A storm of WebSockets through the gateway (`ws://<access>/http/a/<service>/…`) that end in every way: echoes of
 * text and binary messages one at a time and in floods, pushes to a reader that pauses, clients that terminate
 * mid-flood or reset right after sending the upgrade request, services that close with a code of their own or cut the
 * connection mid-message (reset or FIN, no close frame), and refused upgrades. Real daemons (`a` serves; `b` with the gateway's fast path, `c` with the
 * full path), the `ws` client and a `ws` service (ws-chaos.ts), behind a plain TCP service and a `"type": "http"`
 * one, whose upgrades the serving node carries itself.
 *
 * Every message must arrive whole and in order (compared byte for byte), every clean close must reach the other side
 * with its code, and a connection cut on either side must reach the other as an abnormal close (1006), never as a
 * clean one. Afterwards neither node holds a stream and the service holds no connection; the next WebSockets work.
 * The mix comes from a seeded generator (WARREN_CHAOS_SEED repeats a run, WARREN_CHAOS_ONLY=echo,cut runs only the
 * scenarios named).
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import WebSocket from 'ws'
import { useTargetPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { bounded, generator, planOf, runPlan, seedOf } from '../support/seeded.ts'
import { pushed, wsChaos } from '../support/ws-chaos.ts'

const KiB = 1024
const SOCKETS = 200
const AT_ONCE = 24
const LIMIT_MS = 30_000

interface Message {
  data: Buffer
  binary: boolean
}

/** A client WebSocket with its messages queued and its close awaited. */
class Client {
  readonly ws: WebSocket
  readonly opened: Promise<string | undefined>
  readonly closed: Promise<{ code: number; reason: string }>
  readonly #queue: Message[] = []
  readonly #waiters: ((m: Message | undefined) => void)[] = []
  #ended = false

  constructor(url: string) {
    this.ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 })
    this.ws.on('error', () => {})
    this.opened = new Promise((resolve) => {
      this.ws.once('open', () => resolve(undefined))
      this.ws.once('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`))
      this.ws.once('close', () => resolve('closed before it opened'))
    })
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.#ended = true
        for (const w of this.#waiters.splice(0)) w(undefined)
        resolve({ code, reason: reason.toString() })
      })
    })
    this.ws.on('message', (data, binary) => {
      const m = { data: data as Buffer, binary }
      const w = this.#waiters.shift()
      if (w === undefined) this.#queue.push(m)
      else w(m)
    })
  }

  /** The next message, or undefined once the connection has closed. */
  next(): Promise<Message | undefined> {
    const m = this.#queue.shift()
    if (m !== undefined || this.#ended) return Promise.resolve(m)
    return new Promise((r) => this.#waiters.push(r))
  }
}

type Rand = (max: number) => number
interface Ctx {
  /** A client WebSocket to `path` (which gets `?id=` appended) of the service; returns it and its id. */
  open(path: string): { c: Client; id: string }
  /** A raw connection to the access port that sends an upgrade request for `path` and is reset after `ms`. */
  resetAfter(path: string, ms: number): Promise<string>
  /** The close code the service must see for `id`; a list when several are right. */
  expect(id: string, codes: number[]): void
}
type Scenario = (x: Ctx, r: Rand) => Promise<string | undefined>

/** A message of `size` bytes: binary, or text (base64 of as many bytes). */
function message(size: number, seed: number, binary: boolean): { send: Buffer | string; want: Buffer } {
  const bytes = pushed(size, seed, 0)
  if (binary) return { send: bytes, want: bytes }
  const text = bytes.toString('base64')
  return { send: text, want: Buffer.from(text) }
}

const same = (got: Message | undefined, want: Buffer, binary: boolean): boolean =>
  got !== undefined && got.binary === binary && got.data.equals(want)

async function cleanClose(c: Client): Promise<string | undefined> {
  c.ws.close(1000, 'bye')
  const { code, reason } = await c.closed
  return code === 1000 && reason === 'bye' ? undefined : `closed with ${code} "${reason}" instead of 1000 "bye"`
}

const scenarios: Record<string, Scenario> = {
  async echo(x, r) {
    const { c, id } = x.open('/echo')
    const refused = await c.opened
    if (refused !== undefined) return `echo: ${refused}`
    for (let k = 1 + r(12); k > 0; k--) {
      const binary = r(3) !== 0
      const m = message(r(256 * KiB), r(256), binary)
      c.ws.send(m.send)
      if (!same(await c.next(), m.want, binary)) return `echo: message ${k} did not come back whole`
    }
    x.expect(id, [1000])
    return await cleanClose(c)
  },
  async flood(x, r) {
    const { c, id } = x.open('/echo')
    const refused = await c.opened
    if (refused !== undefined) return `flood: ${refused}`
    const sent = Array.from({ length: 1 + r(32) }, () => {
      const binary = r(3) !== 0
      const m = message(r(64 * KiB), r(256), binary)
      c.ws.send(m.send)
      return { ...m, binary }
    })
    for (const [j, m] of sent.entries()) {
      if (!same(await c.next(), m.want, m.binary))
        return `flood: message ${j} of ${sent.length} not whole or not in order`
    }
    x.expect(id, [1000])
    return await cleanClose(c)
  },
  async slowPush(x, r) {
    const [n, size, seed] = [1 + r(16), r(128 * KiB), r(256)]
    const { c, id } = x.open(`/push/${n}/${size}/${seed}`)
    const refused = await c.opened
    if (refused !== undefined) return `push: ${refused}`
    let paused = false
    const flip = setInterval(() => {
      paused = !paused
      if (paused) c.ws.pause()
      else c.ws.resume()
    }, 40 + r(60))
    try {
      for (let j = 0; j < n; j++) {
        if (!same(await c.next(), pushed(size, seed, j), true))
          return `push: message ${j} of ${n} (${size} B) not whole`
      }
    } finally {
      clearInterval(flip)
      c.ws.resume()
    }
    const { code, reason } = await c.closed
    x.expect(id, [1000])
    return code === 1000 && reason === 'pushed' ? undefined : `push: closed with ${code} "${reason}"`
  },
  async clientTerminates(x, r) {
    const { c, id } = x.open('/echo')
    const refused = await c.opened
    if (refused !== undefined) return `terminate: ${refused}`
    for (let k = r(3); k > 0; k--) {
      const m = message(r(8 * KiB), r(256), true)
      c.ws.send(m.send)
      if (!same(await c.next(), m.want, true)) return 'terminate: an echo before the end was not whole'
    }
    for (let k = 1 + r(8); k > 0; k--) c.ws.send(pushed(256 * KiB, r(256), 0))
    await new Promise((res) => setTimeout(res, r(20)))
    c.ws.terminate()
    x.expect(id, [1006])
    return undefined
  },
  async resetDuringUpgrade(x, r) {
    const id = await x.resetAfter('/echo', r(6))
    // the upgrade may not have reached the service; if it did, the service saw no clean close
    x.expect(id, [1006, -1])
    return undefined
  },
  async serviceCuts(x, r) {
    const [n, size, seed] = [r(6), 1 + r(256 * KiB), r(256)]
    const how = r(2) === 0 ? 'rst' : 'fin'
    const { c, id } = x.open(`/cut/${n}/${size}/${seed}/${how}`)
    const refused = await c.opened
    if (refused !== undefined) return `cut: ${refused}`
    let got = 0
    for (let m = await c.next(); m !== undefined; m = await c.next()) {
      if (got >= n || !same(m, pushed(size, seed, got), true)) return `cut (${how}): message ${got} was not one sent`
      got++
    }
    const { code } = await c.closed
    x.expect(id, [1006])
    if (code !== 1006) return `cut (${how}) after ${got} of ${n} messages: the client saw ${code}, not 1006`
    // a FIN comes after every byte written before it; a reset may overtake some
    return how === 'fin' && got !== n ? `cut (fin): ${got} of the ${n} messages before it arrived` : undefined
  },
  async serviceCloses(x, r) {
    const code = 4000 + r(1000)
    const { c, id } = x.open(`/close/${code}`)
    const refused = await c.opened
    if (refused !== undefined) return `close: ${refused}`
    const got = await c.closed
    x.expect(id, [code])
    return got.code === code && got.reason === 'custom' ? undefined : `close: ${got.code} "${got.reason}", not ${code}`
  },
  async refused(x) {
    const { c } = x.open('/refuse')
    const refused = await c.opened
    c.ws.terminate()
    return refused === 'status 403' ? undefined : `refused: ${refused ?? 'opened'} instead of status 403`
  },
}

describe('a storm of WebSockets ending every way, through the gateway', () => {
  const ends = useTargetPair(wsChaos)

  for (const [path, service] of [
    ['fast', 'web'],
    ['full', 'web'],
    ['fast', 'hweb'],
    ['full', 'hweb'],
  ] as const) {
    it(`${path} path, service "${service}": ${SOCKETS} WebSockets, ${AT_ONCE} at a time: whole, or closed abnormally on both sides`, async () => {
      const [pair, target] = [ends.pair(), ends.target()]
      const access = path === 'fast' ? pair.fast : pair.full
      const clientNode = path === 'fast' ? pair.b : pair.c!
      const base = `/http/a/${service}`
      const seed = seedOf()
      const next = generator(seed)
      const r: Rand = (max) => Math.floor(next() * max)
      const expected = new Map<string, number[]>()
      let ids = 0
      const x: Ctx = {
        open(p) {
          const id = `${path}-${service}-${ids++}`
          return { c: new Client(`ws://${access}${base}${p}?id=${id}`), id }
        },
        async resetAfter(p, ms) {
          const id = `${path}-${service}-${ids++}`
          const i = access.lastIndexOf(':')
          const s = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)) })
          s.on('error', () => {})
          s.write(
            `GET ${base}${p}?id=${id} HTTP/1.1\r\nHost: ${access}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
          )
          await new Promise((res) => setTimeout(res, ms))
          s.resetAndDestroy()
          return id
        },
        expect: (id, codes) => expected.set(id, codes),
      }
      const { plan, mix } = planOf(Object.keys(scenarios), SOCKETS, r)
      const problems = await runPlan(plan, AT_ONCE, LIMIT_MS, (name) => scenarios[name]!(x, r))
      const context = `seed ${seed}, mix ${JSON.stringify(mix)}`
      assert.deepEqual(problems, [], context)

      const a = await pair.a.client()
      const c = await clientNode.client()
      try {
        await eventually(
          async () => {
            const open = {
              served: (await a.status()).streams.incoming.active,
              asked: (await c.status()).streams.active,
              toService: target.open(),
            }
            assert.deepEqual(open, { served: 0, asked: 0, toService: 0 })
            return true
          },
          { timeoutMs: 15_000, message: `no stream on either node and no connection to the service (${context})` },
        )
      } finally {
        a.close()
        c.close()
      }
      const wrong = [...expected]
        .map(([id, codes]) => [id, target.closes.get(id) ?? -1, codes] as const)
        .filter(([, got, codes]) => !codes.includes(got))
        .map(([id, got, codes]) => `${id}: the service saw ${got}, not ${codes.join(' or ')}`)
      assert.deepEqual(wrong, [], context)

      for (let k = 0; k < 4; k++) assert.equal(await bounded('after', scenarios.echo!(x, r), LIMIT_MS), undefined)
    })
  }
})
