/**
 * The dashboard in Chromium, on the access port's own origin `http://warren.localhost:<access port>/`: while a
 * transfer is under way (the service holds it half sent), the page shows the service's open stream and its bytes on
 * the host, the outgoing stream on the client, the peer's path and round trip, and uPlot charts with the transfer's
 * rate in them; a screenshot of it is saved in the test's temp output. The transfer then completes and is checked
 * by SHA-256. A page on another origin cannot read the dashboard's status, and other Hosts are refused.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { createServer as createHttpServer, type Server as HttpServer, request } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium, type Page } from 'playwright-core'
import { runCli } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { ByteSource, MiB } from '../support/transfer.ts'
import { startUiPair, type UiPair } from './ui-pair.ts'

const CHROMIUM = '/usr/bin/chromium'
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking']
const SIZE = 4 * MiB
const SEED = 11
const CHUNK = 64 * 1024

/** Sends the first half of ByteSource(SIZE, SEED) paced, waits for `release`, then the rest and a FIN. */
function heldSource(released: Promise<void>): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s: Socket) => {
    s.on('error', () => {})
    s.resume()
    const data = new ByteSource(SIZE, SEED).next(SIZE)!
    // the first half paced (64 KiB every 100 ms, 32 chunks), so the page sees a throughput over several polls
    let sent = 0
    const timer = setInterval(() => {
      s.write(data.subarray(sent, sent + CHUNK))
      sent += CHUNK
      if (sent < SIZE / 2) return
      clearInterval(timer)
      void released.then(() => s.end(data.subarray(SIZE / 2)))
    }, 100)
    s.on('close', () => clearInterval(timer))
  })
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, port: (server.address() as { port: number }).port })),
  )
}

const portOf = (addr: string): number => Number(addr.slice(addr.lastIndexOf(':') + 1))

/** A `data-value` in the page; the CSP forbids eval there, so the DOM is read through locators. */
const value = (p: Page, sel: string): Promise<string | null> =>
  p
    .locator(sel)
    .first()
    .getAttribute('data-value', { timeout: 1_000 })
    .catch(() => null)

/** GET on `addr` (host:port) with these headers: status, body and the X-Warren-Error code. */
function get(
  addr: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: portOf(addr), path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const error = res.headers['x-warren-error']
        resolve({
          status: res.statusCode!,
          body: Buffer.concat(chunks).toString('utf8'),
          error: typeof error === 'string' ? error : undefined,
        })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/** A plain page on another origin (any Host), from which a script tries to read the dashboard. */
function otherSiteServer(): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>another site</title>')
  })
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, port: (server.address() as { port: number }).port })),
  )
}

describe('the dashboard', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, () => {
  let pair: UiPair
  let source: { server: Server; port: number }
  let otherSite: { server: HttpServer; port: number }
  let release: () => void = () => {}
  const released = new Promise<void>((r) => {
    release = r
  })
  let out: string
  let profile: string
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>>

  before(async () => {
    source = await heldSource(released)
    otherSite = await otherSiteServer()
    pair = await startUiPair({ bulk: `/tcp/${source.port}` })
    out = await mkdtemp(join(tmpdir(), 'warren-dashboard-'))
    profile = await mkdtemp(join(tmpdir(), 'warren-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      timeout: 60_000,
      viewport: { width: 1280, height: 900 },
    })
  })
  after(async () => {
    release()
    await context?.close()
    await pair?.close()
    await new Promise<void>((r) => (source ? source.server.close(() => r()) : r()))
    await new Promise<void>((r) => (otherSite ? otherSite.server.close(() => r()) : r()))
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  })

  it('shows a transfer in progress on both nodes, live, with uPlot charts', async (t) => {
    const fwd = await runCli(['forward', 'a/bulk', '--listen', '127.0.0.1:0', '--no-check'], { home: pair.b.home.dir })
    assert.equal(fwd.code, 0, fwd.stderr)
    const [host, port] = fwd.stdout.trim().split(':')
    const client = connect({ host, port: Number(port), allowHalfOpen: true })
    const hash = createHash('sha256')
    let received = 0
    client.on('data', (d: Buffer) => {
      hash.update(d)
      received += d.length
    })
    const ended = new Promise<void>((resolve, reject) => {
      client.once('end', () => resolve())
      client.once('error', reject)
    })
    client.end()

    const page = await context.newPage()
    const res = await page.goto(`http://warren.localhost:${portOf(pair.a.access)}/`, { timeout: 30_000 })
    assert.equal(res?.status(), 200)
    assert.equal(await page.title(), 'Warren')
    const row = '#services tr[data-key="in-service:bulk"]'
    await eventually(
      async () =>
        (await value(page, `${row} .open`)) === '1' && Number(await value(page, `${row} .bytes-out`)) >= SIZE / 2,
      { timeoutMs: 20_000, message: 'the dashboard shows the open stream and its bytes' },
    )
    assert.equal(await page.textContent(`${row} td.mono`), 'bulk')
    assert.equal(await page.getAttribute(`${row} .bytes-out`, 'data-value'), String(SIZE / 2))
    assert.equal(await page.textContent(`${row} .bytes-out`), '2.00 MiB')
    // who used it: b, one stream, open, with the bytes sent to it so far
    const use = `#usage tr[data-key="use:bulk:${pair.b.id}"]`
    assert.equal(await value(page, `${use} .streams`), '1')
    assert.equal(await value(page, `${use} .open`), '1')
    assert.equal(await page.textContent(`${use} .node`), `b (${pair.b.id.slice(0, 8)}…${pair.b.id.slice(-6)})`)
    assert.ok(Number(await value(page, `${use} .bytes-out`)) >= SIZE / 2)
    assert.match((await page.textContent('#state')) ?? '', /^live · updated /)
    // the charts are uPlot's (a canvas each), and the service's series has seen the transfer's rate
    const chart = '#chart-services'
    await eventually(async () => Number(await page.getAttribute(chart, 'data-max')) > 0, {
      timeoutMs: 20_000,
      message: 'the service chart has a rate above zero',
    })
    assert.equal(await page.getAttribute(chart, 'data-series'), 'bulk (offered)')
    assert.equal(await page.locator(`${chart} .uplot canvas`).count(), 1)
    assert.equal(await page.locator(`${chart} .u-legend .u-series`).count(), 2) // the time axis and bulk
    assert.ok(Number(await page.getAttribute(chart, 'data-max')) <= SIZE)
    assert.equal(await page.locator('#chart-peers .uplot canvas').count(), 1)
    // the network: no relays in this pair, and no NAT check without one
    assert.equal(await page.textContent('#network tr[data-key="home-relay"] td.value'), 'no relays configured')
    await eventually(
      async () =>
        (await page.locator('#network tr[data-key="nat"] td.value').textContent()) ===
        'unknown: no relay to ask (config relays)',
      { timeoutMs: 20_000, message: 'the NAT row says why it is unknown' },
    )
    const shot = join(out, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    assert.ok((await stat(shot)).size > 10_000)
    t.diagnostic(`screenshot: ${shot}`)

    const bPage = await context.newPage()
    await bPage.goto(`http://warren.localhost:${portOf(pair.b.access)}/`, { timeout: 30_000 })
    await eventually(async () => (await value(bPage, '#outgoing tr[data-key="out-service:bulk"] .open')) === '1', {
      timeoutMs: 20_000,
      message: "the client's dashboard shows the outgoing stream",
    })
    // the path to a and its round trip (libp2p's connection monitor pings every 10 s)
    const peerRow = `#peers tr[data-key="peer:${pair.a.id}"]`
    assert.equal(await value(bPage, `${peerRow} .path`), 'direct')
    await eventually(async () => Number(await value(bPage, `${peerRow} .rtt`)) > 0, {
      timeoutMs: 30_000,
      message: "the client's dashboard shows the round trip to a",
    })
    await eventually(async () => (await bPage.getAttribute('#chart-peers', 'data-series')) === 'a', {
      timeoutMs: 20_000,
      message: "the client's peer chart has a series for a",
    })
    // a forward to a service a does not offer: the client is cut, and the forward's last error says why
    const bad = await runCli(['forward', 'a/nope', '--listen', '127.0.0.1:0', '--no-check'], { home: pair.b.home.dir })
    assert.equal(bad.code, 0, bad.stderr)
    const badListen = bad.stdout.trim()
    const refused = connect({ host: '127.0.0.1', port: portOf(badListen) })
    refused.on('data', () => {})
    await new Promise<void>((resolve) => {
      refused.once('close', () => resolve())
      refused.once('error', () => {})
    })
    await eventually(
      async () =>
        /\(ERR_UNKNOWN_SERVICE, \d+ s ago\)$/.test(
          (await bPage
            .locator(`#forwards tr[data-key="forward:${badListen}"] .last-error`)
            .textContent({ timeout: 1_000 })
            .catch(() => null)) ?? '',
        ),
      { timeoutMs: 20_000, message: "the client's dashboard shows the forward's last error" },
    )
    await bPage.screenshot({ path: join(out, 'dashboard-client.png'), fullPage: true })

    release()
    await ended
    assert.equal(received, SIZE)
    assert.equal(hash.digest('hex'), ByteSource.digest(SIZE, SEED))
    await eventually(
      async () =>
        (await value(page, `${row} .open`)) === '0' &&
        (await page
          .locator(`${row} .ends`)
          .textContent({ timeout: 1_000 })
          .catch(() => null)) === '1 ok',
      { timeoutMs: 20_000, message: 'the dashboard shows the stream ended ok' },
    )
    await eventually(
      async () => Number(await value(page, `#usage tr[data-key="use:bulk:${pair.b.id}"] .bytes-out`)) === SIZE,
      {
        timeoutMs: 20_000,
        message: 'who used it: the whole transfer',
      },
    )
    await page.close()
    await bPage.close()
  })

  it('cannot be read by a page on another origin', async () => {
    const origin = `http://warren.localhost:${portOf(pair.a.access)}`
    // pages on other origins: another port, and another name under localhost
    for (const other of [`http://127.0.0.1:${otherSite.port}/`, `http://evil.localhost:${otherSite.port}/`]) {
      const page = await context.newPage()
      await page.goto(other, { timeout: 30_000 })
      // a CORS read fails in the browser; a no-cors request (as an <img> or <script> makes) reaches the
      // server, which refuses it by its headers: the body never leaves the daemon
      const read = await page.evaluate(
        (url) =>
          fetch(url).then(
            (r) => r.text().then((body) => `read: ${body.slice(0, 40)}`),
            (err: Error) => `failed: ${err.name}`,
          ),
        `${origin}/status.json`,
      )
      assert.equal(read, 'failed: TypeError', other)
      const answered = page.waitForResponse(`${origin}/status.json`, { timeout: 20_000 })
      const kind = await page.evaluate(
        (url) => fetch(url, { mode: 'no-cors' }).then((r) => r.type),
        `${origin}/status.json`,
      )
      assert.equal(kind, 'opaque')
      const res = await answered
      assert.equal(res.status(), 403, other)
      assert.equal((await res.allHeaders())['x-warren-error'], 'ERR_CROSS_ORIGIN', other)
      const sent = await res.request().allHeaders()
      assert.equal(sent['sec-fetch-site'], 'cross-site', other)
      await page.close()
    }
    // the exact refusal, as Chromium's request carries it
    const refused = await get(pair.a.access, '/status.json', {
      host: `warren.localhost:${portOf(pair.a.access)}`,
      origin: 'http://evil.example',
      'sec-fetch-site': 'cross-site',
    })
    assert.equal(refused.status, 403)
    assert.equal(refused.error, 'ERR_CROSS_ORIGIN')
    assert.match(
      refused.body,
      new RegExp(`a browser request to ${origin} was refused: the request comes from http://evil\\.example\\n`),
    )
    const site = await get(pair.a.access, '/', {
      host: `warren.localhost:${portOf(pair.a.access)}`,
      'sec-fetch-site': 'same-site',
    })
    assert.equal(site.status, 403)
    assert.match(site.body, /was refused: the request comes from another site \(Sec-Fetch-Site: same-site\)\n/)
  })

  it('refuses other Host names and ports, and serves /metrics to Prometheus on the plain address', async () => {
    const port = portOf(pair.a.access)
    const evil = await get(pair.a.access, '/status.json', { host: `evil.example:${port}` })
    assert.equal(evil.status, 421)
    assert.equal(evil.error, 'ERR_HOST_NOT_SERVED')
    assert.match(evil.body, /the access port does not serve the host name "evil\.example:\d+"/)
    const wrongPort = await get(pair.a.access, '/status.json', { host: 'warren.localhost:1' })
    assert.equal(wrongPort.status, 421)
    assert.equal(wrongPort.error, 'ERR_HOST_NOT_SERVED')
    assert.match(
      wrongPort.body,
      new RegExp(`the access port does not serve the host name "warren\\.localhost:1": the access port is ${port}\\n`),
    )
    // the dashboard is on its own origin only: not on the plain address, where the path gateway lives
    const plain = await get(pair.a.access, '/status.json', { host: pair.a.access })
    assert.equal(plain.status, 404)
    assert.equal(plain.error, 'ERR_NO_SUCH_PAGE')
    const ok = await get(pair.a.access, '/status.json', { host: `warren.localhost:${port}` })
    assert.equal(ok.status, 200)
    assert.equal(JSON.parse(ok.body).id, pair.a.id)
    const metrics = await get(pair.a.access, '/metrics', { host: pair.a.access })
    assert.equal(metrics.status, 200)
    assert.match(metrics.body, /^# TYPE warren_stream_bytes_total counter$/m)
    const browser = await get(pair.a.access, '/metrics', { host: pair.a.access, 'sec-fetch-site': 'cross-site' })
    assert.equal(browser.status, 404)
    assert.equal(browser.error, 'ERR_NO_SUCH_PAGE')
  })
})
