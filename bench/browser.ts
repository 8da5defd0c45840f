/**
 * The browser benchmark: Chromium (Debian's, driven by playwright-core) loads a page with dist/browser/warren.js and
 * reaches an HTTP service behind a Warren node that listens nowhere, through an in-process relay over WebSocket.
 *
 * - first byte: from navigation start to the first byte of a service response (new page each load: bundle load,
 *   key from IndexedDB, relay WebSocket and reservation, circuit to the node, Noise, service stream), p50 over
 *   `--loads` loads;
 * - throughput browser → relay → node, both ways (`--mib` MiB each), against the same transfers from a Node-side
 *   Warren node through the same relay (the baseline, same run);
 * - the same transfers over the direct WebRTC path (the relay carrying only the signalling), and the time from the
 *   first relayed stream to the open WebRTC tunnel;
 * - the bundle's size, raw and gzipped.
 *
 * `npm run bench` runs it too (bench/run.ts, unless `--no-browser`). The results go to
 * bench/results/<YYYY-MM-DD>-browser.json (or `--out`).
 *
 *   node bench/browser.ts [--loads 20] [--mib 64] [--out file.json]
 */
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Stream } from '@libp2p/interface'
import { chromium } from 'playwright-core'
import { BUNDLE, buildBrowser } from '../scripts/build-browser.ts'
import { validateConfig } from '../src/config/load.ts'
import { generateNodeKey } from '../src/identity/keys.ts'
import { WarrenNode } from '../src/node/warren-node.ts'
import { waitForRoom } from '../src/p2p/stream-room.ts'
import { validateRelayConfig } from '../src/relay/server/config.ts'
import { startRelay } from '../src/relay/server/relay-node.ts'
import { helpIfAsked } from './help.ts'
import { formatTable, type LatencySummary, MiB, mibPerSec, summarize } from './stats.ts'

const CHROMIUM = '/usr/bin/chromium'

export interface BrowserBenchResult {
  bundle: { bytes: number; gzip: number }
  firstByteMs: LatencySummary
  /** Through the relay (WebSocket, circuit). */
  browser: { downMiBps: number; upMiBps: number }
  /** Over the direct WebRTC path; `setupMs`: from the first relayed stream to the open tunnel. */
  webrtc: { downMiBps: number; upMiBps: number; setupMs: number }
  node: { downMiBps: number; upMiBps: number }
  mib: number
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`)
}

/** GET /blob/<n>: n zero bytes; POST /upload: answers the body's size; anything else: `hello`. */
async function target(): Promise<{ port: number; close(): Promise<void> }> {
  const chunk = Buffer.alloc(256 * 1024)
  const server: Server = createServer((req, res) => {
    const m = /^\/blob\/(\d+)$/.exec(req.url ?? '')
    if (m !== null) {
      let left = Number(m[1])
      res.writeHead(200, { 'content-length': left })
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.byteLength)
          left -= n
          if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump)
        }
        res.end()
      }
      return pump()
    }
    if (req.url === '/upload') {
      let n = 0
      req.on('data', (c: Buffer) => {
        n += c.byteLength
      })
      req.on('end', () => res.writeHead(200).end(String(n)))
      return
    }
    res.writeHead(200, { 'content-length': 5 }).end('hello')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

async function pageServer(): Promise<{ url: string; close(): Promise<void> }> {
  const { readFile } = await import('node:fs/promises')
  const code = await readFile(BUNDLE)
  const server = createServer((req, res) => {
    if (req.url === '/warren.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(code)
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>bench</title>')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/**
 * Bytes of an HTTP/1.1 exchange on a Node-side service stream, until the service ends its side; ours is closed only
 * then, as a browser's fetch never half-closes (HTTP servers stop answering when the request side closes).
 */
async function nodeExchange(stream: Stream, head: string, upload: number): Promise<number> {
  let got = 0
  const ended = new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      got += evt.data.byteLength
    })
    stream.addEventListener('end', () => resolve())
    stream.addEventListener('close', (evt) => (evt.error === undefined ? resolve() : reject(evt.error)))
  })
  stream.send(Buffer.from(head))
  const chunk = Buffer.alloc(256 * 1024)
  for (let left = upload; left > 0; left -= chunk.byteLength) {
    if (!stream.send(chunk.subarray(0, Math.min(left, chunk.byteLength)))) await waitForRoom(stream)
  }
  await ended
  await stream.close()
  return got
}

export async function runBrowserBench(opts: { loads: number; mib: number }): Promise<BrowserBenchResult> {
  const bundle = await buildBrowser()
  const hostKey = await generateNodeKey()
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  const hostId = peerIdFromPrivateKey(hostKey).toString()
  const relay = await startRelay({
    privateKey: await generateNodeKey(),
    config: validateRelayConfig({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      ws: { port: 0, host: '127.0.0.1' },
      stun: false,
      allow: [hostId],
    }),
  })
  const app = await target()
  const start = (config: Record<string, unknown>, privateKey = hostKey) =>
    WarrenNode.start({
      privateKey,
      config: validateConfig({ traversal: { enabled: false }, ...config }),
      listen: [],
      accessListen: false,
    })
  const host = await start({
    relays: [relay.addrs.find((a) => !a.includes('/ws'))!],
    services: { app: { target: `/tcp/${app.port}`, allow: ['*'] } },
    // WebRTC for the browser's direct path (UDP on loopback; no STUN: host candidates)
    traversal: { enabled: true, udpListen: ['/ip4/127.0.0.1/udp/0'] },
  })
  const ticket = host.identity().ticket
  const relayWs = relay.addrs.find((a) => a.includes('/ws/'))!
  const web = await pageServer()
  const context = await chromium.launchPersistentContext('', {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  })
  const client = await start({}, await generateNodeKey())
  try {
    const first: number[] = []
    for (let i = 0; i < opts.loads; i++) {
      const page = await context.newPage()
      await page.goto(web.url)
      first.push(
        await page.evaluate(
          async ({ relayWs, ticket }) => {
            const bundle = '/warren.js'
            const w = await import(bundle)
            const node = await w.startBrowserNode({ relays: [relayWs] })
            const res: Response = await node.fetch(ticket, 'app', '/hello')
            await res.body!.getReader().read()
            const ms = performance.now()
            await node.stop()
            return ms
          },
          { relayWs, ticket },
        ),
      )
      await page.close()
    }
    log(`first byte p50 ${summarize(first).p50} ms over ${opts.loads} loads`)
    const bytes = opts.mib * MiB
    const transfer = async (webrtc: boolean) => {
      const page = await context.newPage()
      await page.goto(web.url)
      const r = await page.evaluate(
        async ({ relayWs, ticket, bytes, webrtc }) => {
          const bundle = '/warren.js'
          const w = await import(bundle)
          const node = await w.startBrowserNode({ relays: [relayWs], ...(webrtc ? {} : { webrtc: false }) })
          await (await node.fetch(ticket, 'app', '/warm')).text()
          const path = await node.path(ticket)
          if (path.path !== (webrtc ? 'webrtc' : 'relay')) throw new Error(`path ${path.path}: ${path.reason}`)
          let t = performance.now()
          const res: Response = await node.fetch(ticket, 'app', `/blob/${bytes}`)
          const reader = res.body!.getReader()
          let got = 0
          for (let r = await reader.read(); !r.done; r = await reader.read()) got += r.value.byteLength
          const downMs = performance.now() - t
          if (got !== bytes) throw new Error(`downloaded ${got} of ${bytes} bytes`)
          const chunk = new Uint8Array(256 * 1024)
          let sent = 0
          const body = new ReadableStream<Uint8Array>({
            pull(ctl) {
              if (sent >= bytes) return ctl.close()
              ctl.enqueue(chunk.slice())
              sent += chunk.byteLength
            },
          })
          t = performance.now()
          const up: Response = await node.fetch(ticket, 'app', '/upload', {
            method: 'POST',
            body,
            duplex: 'half',
          } as RequestInit)
          const answer = await up.text()
          const upMs = performance.now() - t
          if (answer !== String(bytes)) throw new Error(`the service got ${answer} of ${bytes} bytes`)
          await node.stop()
          return { downMs, upMs, setupMs: (path.ms as number | undefined) ?? 0 }
        },
        { relayWs, ticket, bytes, webrtc },
      )
      await page.close()
      return r
    }
    const browser = await transfer(false)
    const direct = await transfer(true)
    log(`webrtc: set-up ${direct.setupMs} ms, down ${mibPerSec(bytes, direct.downMs)} MiB/s`)
    let t = performance.now()
    const down = await nodeExchange(
      await client.openService(ticket, 'app'),
      `GET /blob/${bytes} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`,
      0,
    )
    const nodeDownMs = performance.now() - t
    if (down < bytes) throw new Error(`the Node-side download got ${down} bytes`)
    t = performance.now()
    await nodeExchange(
      await client.openService(ticket, 'app'),
      `POST /upload HTTP/1.1\r\nhost: app\r\nconnection: close\r\ncontent-length: ${bytes}\r\n\r\n`,
      bytes,
    )
    const nodeUpMs = performance.now() - t
    return {
      bundle: { bytes: bundle.bytes, gzip: bundle.gzip },
      firstByteMs: summarize(first),
      browser: { downMiBps: mibPerSec(bytes, browser.downMs), upMiBps: mibPerSec(bytes, browser.upMs) },
      webrtc: {
        downMiBps: mibPerSec(bytes, direct.downMs),
        upMiBps: mibPerSec(bytes, direct.upMs),
        setupMs: direct.setupMs,
      },
      node: { downMiBps: mibPerSec(bytes, nodeDownMs), upMiBps: mibPerSec(bytes, nodeUpMs) },
      mib: opts.mib,
    }
  } finally {
    await context.close()
    await web.close()
    await client.stop()
    await host.stop()
    await relay.stop()
    await app.close()
  }
}

export function formatBrowserBench(r: BrowserBenchResult): string {
  const f = (x: number) => x.toFixed(1)
  return formatTable([
    ['browser', 'figure'],
    ['bundle', `${f(r.bundle.bytes / 1024)} KiB, ${f(r.bundle.gzip / 1024)} KiB gzipped`],
    [
      'page load → first byte',
      `p50 ${f(r.firstByteMs.p50)} ms, p90 ${f(r.firstByteMs.p90)} ms (${r.firstByteMs.count} loads)`,
    ],
    [
      `download ${r.mib} MiB, relayed`,
      `${f(r.browser.downMiBps)} MiB/s (Node-side node: ${f(r.node.downMiBps)}, ratio ${(r.browser.downMiBps / r.node.downMiBps).toFixed(2)})`,
    ],
    [
      `upload ${r.mib} MiB, relayed`,
      `${f(r.browser.upMiBps)} MiB/s (Node-side node: ${f(r.node.upMiBps)}, ratio ${(r.browser.upMiBps / r.node.upMiBps).toFixed(2)})`,
    ],
    ['WebRTC path set-up', `${f(r.webrtc.setupMs)} ms`],
    [
      `download ${r.mib} MiB, WebRTC`,
      `${f(r.webrtc.downMiBps)} MiB/s (relayed: ${f(r.browser.downMiBps)}, ratio ${(r.webrtc.downMiBps / r.browser.downMiBps).toFixed(2)})`,
    ],
    [
      `upload ${r.mib} MiB, WebRTC`,
      `${f(r.webrtc.upMiBps)} MiB/s (relayed: ${f(r.browser.upMiBps)}, ratio ${(r.webrtc.upMiBps / r.browser.upMiBps).toFixed(2)})`,
    ],
  ])
}

/** Why the browser benchmark cannot run here, or undefined when it can. */
export function browserBenchSkip(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`
}

/** Runs the benchmark, prints its table and writes bench/results/<date>-browser.json (or `out`). */
export async function runBrowserBenchReport(opts: { loads: number; mib: number; out?: string }): Promise<string> {
  const r = await runBrowserBench(opts)
  process.stdout.write(`\n${formatBrowserBench(r)}\n`)
  const date = new Date().toISOString().slice(0, 10)
  const out = opts.out ?? fileURLToPath(new URL(`results/${date}-browser.json`, import.meta.url))
  await mkdir(fileURLToPath(new URL('results/', import.meta.url)), { recursive: true })
  const doc = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
      node: process.version,
    },
    settings: { loads: opts.loads, mib: opts.mib },
    ...r,
  }
  await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`)
  process.stdout.write(`wrote ${out}\n`)
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  helpIfAsked(import.meta.url)
  const { values } = parseArgs({
    options: {
      loads: { type: 'string', default: '20' },
      mib: { type: 'string', default: '64' },
      out: { type: 'string' },
    },
  })
  const skip = browserBenchSkip()
  if (skip !== undefined) throw new Error(`the browser benchmark cannot run: ${skip}`)
  await runBrowserBenchReport({
    loads: Number(values.loads),
    mib: Number(values.mib),
    ...(values.out === undefined ? {} : { out: values.out }),
  })
}
