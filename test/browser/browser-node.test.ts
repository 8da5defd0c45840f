/**
 * A real browser node: Chromium loads dist/browser/warren.js, starts a node with its key in IndexedDB, joins an
 * in-process relay over WebSocket, and reaches a Warren node that listens nowhere (only through that relay).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { nodeKey, startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { freePort } from '../support/servers.ts'
import { ByteSource, blobHttpServer, MiB } from '../support/transfer.ts'
import { startWebApp } from '../support/web-app.ts'
import { launchChromium, SKIP, startPageServer } from './harness.ts'

/** What the page keeps on globalThis between evaluations (the bundle's module and the started node). */
interface PageState {
  // biome-ignore lint/suspicious/noExplicitAny: the bundle's API is exercised as the page's JavaScript sees it
  w: any
  // biome-ignore lint/suspicious/noExplicitAny: as above
  node: any
}

describe('a browser node through a relay', { skip: SKIP, timeout: 180_000 }, () => {
  let relay: TestRelay
  let relayWs: string
  let host: WarrenNode
  let blob: Awaited<ReturnType<typeof blobHttpServer>>
  let app: Awaited<ReturnType<typeof startWebApp>>
  let web: Awaited<ReturnType<typeof startPageServer>>
  let chrome: Awaited<ReturnType<typeof launchChromium>>
  let page: Page
  let hostTicket: string
  let browser: { id: string; ticket: string }

  before(async () => {
    const hostKey = await nodeKey()
    relay = await startTestRelay({
      ws: { port: 0, host: '127.0.0.1' },
      routing: { port: 0, host: '127.0.0.1' },
      discovery: { privateAddresses: true },
      allow: [hostKey.id],
    })
    relayWs = relay.addrs.find((a) => a.includes('/ws/'))!
    assert.ok(relayWs, `the relay listens on WebSocket (${relay.addrs.join(' ')})`)
    blob = await blobHttpServer()
    app = await startWebApp()
    host = await startNode({
      key: hostKey,
      config: {
        relays: [relay.addrs.find((a) => !a.includes('/ws'))!],
        services: {
          blob: { target: `/tcp/${blob.port}`, allow: ['*'] },
          app: { target: `/tcp/${app.port}`, allow: ['*'] },
          secret: { target: `/tcp/${blob.port}`, allow: [(await nodeKey()).id] },
        },
      },
    })
    hostTicket = host.identity().ticket
    web = await startPageServer()
    chrome = await launchChromium()
    page = await chrome.context.newPage()
    await page.goto(web.url)
    browser = await page.evaluate(async (relayAddr) => {
      const bundle = '/warren.js'
      const s = globalThis as unknown as PageState
      s.w = await import(bundle)
      s.node = await s.w.startBrowserNode({ relays: [relayAddr] })
      return { id: s.node.id as string, ticket: s.node.ticket as string }
    }, relayWs)
  })

  after(async () => {
    await page?.evaluate(() => (globalThis as unknown as PageState).node?.stop()).catch(() => {})
    await chrome?.close()
    await web?.close()
    await host?.stop()
    await relay?.stop()
    await blob?.close()
    await app?.close()
  })

  it('has a node id and a ticket that names its relay', async () => {
    assert.match(browser.id, /^12D3KooW/)
    assert.match(browser.ticket, /^warren[a-z2-7]+$/)
    const { decodeTicket } = await import('../../src/identity/ticket.ts')
    const t = decodeTicket(browser.ticket)
    assert.equal(t.id.toString(), browser.id)
    assert.ok(t.addrs.some((a) => a.toString().includes(`${relay.peerId}/p2p-circuit`)))
  })

  it('keeps its key in IndexedDB: a second start in the same origin has the same id', async () => {
    const again = await page.evaluate(async (relayAddr) => {
      const s = globalThis as unknown as PageState
      const other = await s.w.startBrowserNode({ relays: [relayAddr] })
      const id = other.id as string
      await other.stop()
      return id
    }, relayWs)
    assert.equal(again, browser.id)
  })

  it('fetches 64 MiB from an HTTP service behind a node that listens nowhere (sha256 equal)', async () => {
    const size = 64 * MiB
    const got = await page.evaluate(
      async ({ ticket, size }) => {
        const res: Response = await (globalThis as unknown as PageState).node.fetch(ticket, 'blob', `/blob/${size}`)
        const buf = new Uint8Array(size)
        let off = 0
        const reader = res.body!.getReader()
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buf.set(value, off)
          off += value.byteLength
        }
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buf.subarray(0, off)))
        return {
          status: res.status,
          bytes: off,
          sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
        }
      },
      { ticket: hostTicket, size },
    )
    assert.deepEqual(got, { status: 200, bytes: size, sha256: ByteSource.digest(size) })
  })

  it('uploads 16 MiB as a streamed request body (sha256 equal on the service)', async () => {
    const size = 16 * MiB
    const got = await page.evaluate(
      async ({ ticket, size }) => {
        const data = new Uint8Array(size)
        for (let off = 0; off < size; off += 65_536) crypto.getRandomValues(data.subarray(off, off + 65_536))
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data))
        let off = 0
        const body = new ReadableStream<Uint8Array>({
          pull(ctl) {
            if (off >= size) return ctl.close()
            ctl.enqueue(data.slice(off, off + 256 * 1024))
            off += 256 * 1024
          },
        })
        const init = { method: 'POST', body, duplex: 'half' } as RequestInit
        const res: Response = await (globalThis as unknown as PageState).node.fetch(ticket, 'blob', '/upload', init)
        return {
          status: res.status,
          answer: await res.text(),
          sent: `${size} ${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`,
        }
      },
      { ticket: hostTicket, size },
    )
    assert.equal(got.status, 200)
    assert.equal(got.answer, got.sent)
  })

  it('a WebSocket through a service echoes text and a 1 MiB binary message (sha256 equal)', async () => {
    const got = await page.evaluate(async (ticket) => {
      const node = (globalThis as unknown as PageState).node
      const ws = await node.webSocket(ticket, 'app', '/live')
      const messages: (string | ArrayBuffer)[] = []
      const closed = new Promise<{ code: number; wasClean: boolean }>((resolve) =>
        ws.addEventListener('close', (e: { code: number; wasClean: boolean }) =>
          resolve({ code: e.code, wasClean: e.wasClean }),
        ),
      )
      const next = () =>
        new Promise<string | ArrayBuffer>((resolve) => {
          if (messages.length > 0) return resolve(messages.shift()!)
          ws.addEventListener('message', () => resolve(messages.shift()!), { once: true })
        })
      ws.addEventListener('message', (e: MessageEvent) => messages.push(e.data))
      const welcome = await next()
      ws.send('hello over warren')
      const echo = await next()
      const blob = crypto.getRandomValues(new Uint8Array(65_536))
      const big = new Uint8Array(1_048_576)
      for (let off = 0; off < big.byteLength; off += blob.byteLength) big.set(blob, off)
      ws.send(big)
      const back = new Uint8Array((await next()) as ArrayBuffer)
      const hex = async (b: Uint8Array<ArrayBuffer>) =>
        Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', b)), (x) =>
          x.toString(16).padStart(2, '0'),
        ).join('')
      ws.close(1000, 'done')
      return { welcome, echo, sent: await hex(big), back: await hex(back), close: await closed }
    }, hostTicket)
    assert.equal(got.welcome, 'welcome /live peer=-')
    assert.equal(got.echo, 'hello over warren')
    assert.equal(got.back, got.sent)
    assert.deepEqual(got.close, { code: 1000, wasClean: true })
  })

  it('the relay carries only ciphertext: a plaintext marker sent through it never appears in what it forwards', async () => {
    const marker = 'WARREN-PLAINTEXT-MARKER-0123456789'
    const seen: Buffer[] = []
    const tapped = new WeakSet<object>()
    const tap = (): void => {
      for (const conn of relay.libp2p.getConnections()) {
        for (const s of conn.streams) {
          if (tapped.has(s) || !s.protocol?.includes('/libp2p/circuit/relay/')) continue
          tapped.add(s)
          s.addEventListener('message', (evt) => {
            seen.push(Buffer.from(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()))
          })
        }
      }
    }
    tap()
    const timer = setInterval(tap, 1)
    try {
      const answer = await page.evaluate(
        async ({ ticket, marker }) => {
          const body = new TextEncoder().encode(marker.repeat(32_768))
          const res: Response = await (globalThis as unknown as PageState).node.fetch(ticket, 'blob', '/upload', {
            method: 'POST',
            body,
            headers: { 'x-marker': marker },
          })
          return `${res.status} ${await res.text()}`
        },
        { ticket: hostTicket, marker },
      )
      assert.match(answer, /^200 1114112 [0-9a-f]{64}$/)
    } finally {
      clearInterval(timer)
    }
    const relayed = Buffer.concat(seen)
    assert.ok(relayed.byteLength >= 1_114_112, `the relay forwarded the upload (${relayed.byteLength} bytes seen)`)
    assert.equal(relayed.indexOf(marker), -1, 'the marker is not in the relayed bytes')
    assert.equal(relayed.indexOf('POST /upload'), -1, 'the request line is not in the relayed bytes')
  })

  it("looks a node up by id through the relay's routing endpoint (CORS) and fetches by the id alone", async () => {
    const routing = relay.status().routing?.url
    assert.ok(routing)
    const got = await page.evaluate(
      async ({ relayAddr, routing, id }) => {
        const s = globalThis as unknown as PageState
        const other = await s.w.startBrowserNode({
          relays: [relayAddr],
          routing: [routing],
          key: await s.w.loadOrCreateKey('lookup'),
        })
        try {
          const found = (await other.lookup(id)) as { id: string; addrs: string[] }
          const res: Response = await s.node.fetch(id, 'blob', '/blob/1000')
          return { found, otherId: other.id as string, status: res.status, bytes: (await res.arrayBuffer()).byteLength }
        } finally {
          await other.stop()
        }
      },
      { relayAddr: relayWs, routing, id: host.identity().id },
    )
    assert.notEqual(got.otherId, browser.id, 'a key under another name is another node')
    assert.equal(got.found.id, host.identity().id)
    assert.ok(
      got.found.addrs.some((a) => a.includes(`/p2p/${relay.peerId}/p2p-circuit`)),
      got.found.addrs.join(' '),
    )
    assert.deepEqual({ status: got.status, bytes: got.bytes }, { status: 200, bytes: 1000 })
  })

  it("a body cut by the relay's data limit for strangers is ERR_STREAM_ABORTED, never a clean end", async () => {
    // not on the relay's allow list: its circuits carry at most limits.dataBytes (1 MiB by default)
    const stranger = await startNode({
      config: {
        relays: [relay.addrs.find((a) => !a.includes('/ws'))!],
        services: { blob: { target: `/tcp/${blob.port}`, allow: ['*'] } },
      },
    })
    try {
      const got = await page.evaluate(async (ticket) => {
        let bytes = 0
        try {
          const res: Response = await (globalThis as unknown as PageState).node.fetch(ticket, 'blob', '/blob/8388608')
          const reader = res.body!.getReader()
          for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.byteLength
          return { bytes, code: 'clean end' }
        } catch (err) {
          return { bytes, code: (err as { code?: string }).code ?? String(err) }
        }
      }, stranger.identity().ticket)
      assert.equal(got.code, 'ERR_STREAM_ABORTED')
      assert.ok(got.bytes < 8 * MiB, `${got.bytes} bytes arrived before the cut`)
    } finally {
      await stranger.stop()
    }
  })

  it('a refused service is ERR_NOT_AUTHORIZED naming the browser node', async () => {
    const got = await page.evaluate(async (ticket) => {
      try {
        await (globalThis as unknown as PageState).node.fetch(ticket, 'secret', '/blob/1')
        return { code: 'none', message: '', hint: '' }
      } catch (err) {
        const e = err as { code: string; message: string; hint: string }
        return { code: e.code, message: e.message, hint: e.hint }
      }
    }, hostTicket)
    assert.equal(got.code, 'ERR_NOT_AUTHORIZED')
    assert.equal(got.message, `node ${host.identity().id} does not allow this node to use "secret"`)
    assert.match(got.hint, new RegExp(browser.id))
  })

  it("a Node-side node calls a method registered by the page, by the page's ticket", async () => {
    await page.evaluate(() => {
      ;(globalThis as unknown as PageState).node.rpc.register(
        'greet',
        (params: { name: string }, ctx: { caller: string }) => ({
          hello: params.name,
          caller: ctx.caller,
        }),
        { allow: '*' },
      )
    })
    const answer = await host.callNode(browser.ticket, 'greet', { name: 'node' })
    assert.equal(answer.id, browser.id)
    assert.deepEqual(answer.result, { hello: 'node', caller: host.identity().id })
  })

  it('a method registered without `allow` is refused to other nodes (rpcAllow defaults to nobody)', async () => {
    await page.evaluate(() => {
      ;(globalThis as unknown as PageState).node.rpc.register('secret.get', () => 'secret')
    })
    await assert.rejects(host.callNode(browser.ticket, 'secret.get'), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'ERR_RPC_REFUSED')
      return true
    })
  })

  it('a Node-side node opens a stream to a protocol the page handles (echo, sha256 equal)', async () => {
    await page.evaluate(async () => {
      await (globalThis as unknown as PageState).node.handle(
        '/warren-test/echo/1.0.0',
        async (s: { readable: ReadableStream; writable: WritableStream }) => {
          await s.readable.pipeTo(s.writable)
        },
      )
    })
    const conn = await host.connect(browser.ticket)
    const stream = await conn.newStream('/warren-test/echo/1.0.0', { runOnLimitedConnection: true })
    const size = 4 * MiB
    const src = new ByteSource(size, 7)
    const h = createHash('sha256')
    let received = 0
    const done = new Promise<void>((resolve, reject) => {
      stream.addEventListener('message', (evt) => {
        const b = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
        h.update(b)
        received += b.byteLength
      })
      stream.addEventListener('close', (evt) => (evt.error === undefined ? resolve() : reject(evt.error)))
    })
    for (let c = src.next(64 * 1024); c !== null; c = src.next(64 * 1024)) {
      if (!stream.send(c)) await new Promise((r) => stream.addEventListener('drain', r, { once: true }))
    }
    await stream.close()
    await done
    assert.equal(received, size)
    assert.equal(h.digest('hex'), ByteSource.digest(size, 7))
  })

  it('bad input: a malformed ticket, an offline node and an unreachable relay each say what is wrong', async () => {
    const offline = await nodeKey()
    const deadPort = await freePort()
    const got = await page.evaluate(
      async ({ ticket, offline, dead }) => {
        const s = globalThis as unknown as PageState
        const attempt = async (f: () => Promise<unknown>) => {
          try {
            await f()
            return 'no error'
          } catch (err) {
            const e = err as { code: string; message: string }
            return `${e.code}: ${e.message}`
          }
        }
        return {
          malformed: await attempt(() => s.node.fetch(`${ticket.slice(0, -6)}1`, 'blob', '/')),
          truncated: await attempt(() => s.node.fetch(ticket.slice(0, -4), 'blob', '/')),
          offline: await attempt(() => s.node.fetch(offline, 'blob', '/')),
          relay: await attempt(() => s.w.startBrowserNode({ relays: [dead], startTimeoutMs: 5_000 })),
          notWs: await attempt(() => s.w.startBrowserNode({ relays: [dead.replace('/ws', '')] })),
        }
      },
      {
        ticket: hostTicket,
        offline: offline.id,
        dead: `/ip4/127.0.0.1/tcp/${deadPort}/ws/p2p/${relay.peerId}`,
      },
    )
    assert.match(got.malformed, /^ERR_BAD_TICKET: ticket contains "1" at position \d+, which base32/)
    assert.match(got.truncated, /^ERR_BAD_TICKET: ticket (checksum does not match|has an impossible length)/)
    assert.equal(
      got.offline,
      `ERR_DIAL_FAILED: node ${offline.id} is not reachable through the relay: it is offline or not reserved there`,
    )
    assert.match(got.relay, /^ERR_RELAY_UNREACHABLE: could not reach or reserve on any relay/)
    assert.match(got.notWs, /^ERR_BAD_ADDRESS: relay address .* is not a WebSocket address/)
  })
})
