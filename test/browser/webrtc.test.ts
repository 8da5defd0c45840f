/**
 * A browser node's direct WebRTC path: Chromium reaches a node that listens nowhere through a relay over WebSocket,
 * opens a WebRTC connection with the relay carrying only the signalling, and runs its service streams over the
 * WebRTC tunnel (Noise and Yamux on one data channel). Transfers are checked by SHA-256 in the page and on the
 * service, and by the relay's own byte count (what crossed the relay while they ran).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { formatPath } from '../../src/p2p/path.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { ByteSource, blobHttpServer, MiB } from '../support/transfer.ts'
import { launchChromium, SKIP, startPageServer } from './harness.ts'

interface PageState {
  // biome-ignore lint/suspicious/noExplicitAny: the bundle's API is exercised as the page's JavaScript sees it
  w: any
  // biome-ignore lint/suspicious/noExplicitAny: as above
  node: any
}

/** In the page: GET /blob/<size> from `service` on `ticket`; `slow` pauses 40 ms after every MiB read. */
async function pageDownload(page: Page, ticket: string, size: number, slow = false) {
  return page.evaluate(
    async ({ ticket, size, slow }) => {
      const res: Response = await (globalThis as unknown as PageState).node.fetch(ticket, 'blob', `/blob/${size}`)
      const buf = new Uint8Array(size)
      let off = 0
      let nextPause = 1_048_576
      let pauses = 0
      const reader = res.body!.getReader()
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buf.set(value, off)
          off += value.byteLength
          if (slow && off >= nextPause && pauses < 64) {
            nextPause += 1_048_576
            pauses++
            await new Promise((r) => setTimeout(r, 40))
          }
        }
      } catch (err) {
        return { status: res.status, bytes: off, error: String(err) }
      }
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buf.subarray(0, off)))
      const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
      return { status: res.status, bytes: off, sha256 }
    },
    { ticket, size, slow },
  )
}

/** In the page: POST `size` random bytes to /upload, which the service reads at `pace` and answers with its sha256. */
async function pageUpload(page: Page, ticket: string, size: number, pace = 'fast') {
  return page.evaluate(
    async ({ ticket, size, pace }) => {
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
      const init = { method: 'POST', body, duplex: 'half', headers: { 'x-pace': pace } } as RequestInit
      const res: Response = await (globalThis as unknown as PageState).node.fetch(ticket, 'blob', '/upload', init)
      return {
        status: res.status,
        answer: await res.text(),
        sent: `${size} ${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`,
      }
    },
    { ticket, size, pace },
  )
}

describe('a browser node on a direct WebRTC path', { skip: SKIP, timeout: 240_000 }, () => {
  let relay: TestRelay
  let relayWs: string
  let host: WarrenNode
  let plain: WarrenNode
  let blob: Awaited<ReturnType<typeof blobHttpServer>>
  let web: Awaited<ReturnType<typeof startPageServer>>
  let chrome: Awaited<ReturnType<typeof launchChromium>>
  let page: Page
  let hostTicket: string
  let browserId: string

  const relayed = (): number => relay.status().totals.bytesRelayed

  before(async () => {
    const [hostKey, plainKey] = await Promise.all([nodeKey(), nodeKey()])
    relay = await startTestRelay({ ws: { port: 0, host: '127.0.0.1' }, allow: [hostKey.id, plainKey.id] })
    relayWs = relay.addrs.find((a) => a.includes('/ws/'))!
    const relayTcp = relay.addrs.find((a) => !a.includes('/ws'))!
    blob = await blobHttpServer()
    const services = { blob: { target: `/tcp/${blob.port}`, allow: ['*'] } }
    host = await startNode({ key: hostKey, config: { relays: [relayTcp], services, traversal: { enabled: true } } })
    plain = await startNode({
      key: plainKey,
      config: { relays: [relayTcp], services, traversal: { enabled: true, webrtc: false } },
    })
    hostTicket = host.identity().ticket
    web = await startPageServer()
    chrome = await launchChromium()
    page = await chrome.context.newPage()
    await page.goto(web.url)
    browserId = await page.evaluate(async (relayAddr) => {
      const s = globalThis as unknown as PageState
      s.w = await import('/warren.js' as string)
      s.node = await s.w.startBrowserNode({ relays: [relayAddr] })
      return s.node.id as string
    }, relayWs)
  })

  after(async () => {
    await page?.evaluate(() => (globalThis as unknown as PageState).node?.stop()).catch(() => {})
    await chrome?.close()
    await web?.close()
    await host?.stop()
    await plain?.stop()
    await relay?.stop()
    await blob?.close()
  })

  it('opens a WebRTC path to a node reached through the relay, and the node sees it as direct', async () => {
    const state = await page.evaluate((t) => (globalThis as unknown as PageState).node.path(t), hostTicket)
    assert.equal(state.path, 'webrtc', `the path stayed on the relay: ${state.reason}`)
    assert.equal(typeof state.ms, 'number')
    const conns = () => host.libp2p.getConnections().filter((c) => c.remotePeer.toString() === browserId)
    const tunnel = await eventually(
      `a tunnel connection on the node (${conns().map((c) => `${c.remoteAddr} ${c.multiplexer}`)})`,
      () => conns().find((c) => c.multiplexer === '/yamux/1.0.0' && c.remoteAddr.toString().startsWith('/webrtc')),
    )
    assert.equal(tunnel.limits, undefined)
    assert.equal(tunnel.encryption, '/noise')
    assert.equal(formatPath({ kind: 'direct', addr: tunnel.remoteAddr.toString() }), 'direct webrtc')
    const st = host.status()
    assert.equal(st.webrtc.enabled, true)
    assert.equal(st.webrtc.reason, undefined)
    assert.deepEqual(plain.status().webrtc, {
      enabled: false,
      reason: 'off in config (traversal.webrtc)',
      iceServers: [],
    })
  })

  it('downloads 64 MiB over the WebRTC path (sha256 equal) while the relay carries almost nothing', async () => {
    const before = relayed()
    const got = await pageDownload(page, hostTicket, 64 * MiB)
    assert.deepEqual(got, { status: 200, bytes: 64 * MiB, sha256: ByteSource.digest(64 * MiB) })
    const through = relayed() - before
    assert.ok(through < 256 * 1024, `the relay carried ${through} bytes of a 64 MiB transfer`)
  })

  it('uploads 16 MiB over the WebRTC path (sha256 equal on the service)', async () => {
    const before = relayed()
    const got = await pageUpload(page, hostTicket, 16 * MiB)
    assert.equal(got.status, 200)
    assert.equal(got.answer, got.sent)
    assert.ok(relayed() - before < 256 * 1024)
  })

  it('a page that reads slower than the path gets every byte of 32 MiB (no reset, sha256 equal)', async () => {
    const got = await pageDownload(page, hostTicket, 32 * MiB, true)
    assert.deepEqual(got, { status: 200, bytes: 32 * MiB, sha256: ByteSource.digest(32 * MiB) })
  })

  it('a service that reads slower than the path gets every byte of 16 MiB (sha256 equal)', async () => {
    const got = await pageUpload(page, hostTicket, 16 * MiB, '8mibps')
    assert.equal(got.status, 200)
    assert.equal(got.answer, got.sent)
  })

  it('a node with traversal.webrtc off stays on the relay, with the reason, and still serves', async () => {
    const ticket = plain.identity().ticket
    const state = await page.evaluate((t) => (globalThis as unknown as PageState).node.path(t), ticket)
    assert.deepEqual(state, {
      path: 'relay',
      reason: 'the node does not offer WebRTC (traversal.webrtc off, or an older Warren)',
    })
    const got = await pageDownload(page, ticket, 4 * MiB)
    assert.deepEqual(got, { status: 200, bytes: 4 * MiB, sha256: ByteSource.digest(4 * MiB) })
  })

  it('a node that goes away mid-transfer ends the download with an error in the page, not a short body', async () => {
    const size = 256 * MiB
    const sent = (): number => {
      host.streamCounters.sample()
      return host.streamCounters.snapshot().incoming.total.bytesOut
    }
    const base = sent()
    const download = pageDownload(page, hostTicket, size, true)
    // stop the node once 8 MiB went out: its tunnel and relayed connections close under the stream
    await eventually('8 MiB sent', () => sent() - base > 8 * MiB, 30_000)
    await host.stop()
    const got = await download
    assert.ok('error' in got, `the page saw ${JSON.stringify(got)}`)
    assert.ok(got.bytes < size)
  })
})
