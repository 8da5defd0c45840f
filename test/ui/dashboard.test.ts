/**
 * The dashboard in Chromium: while a transfer is under way (the service holds it half sent), the page shows the
 * service's open stream and its bytes on the host, the outgoing stream on the client, and a throughput sparkline;
 * a screenshot of it is saved in the test's temp output. The transfer then completes and is checked by SHA-256.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
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

describe('the dashboard', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, () => {
  let pair: UiPair
  let source: { server: Server; port: number }
  let release: () => void = () => {}
  const released = new Promise<void>((r) => {
    release = r
  })
  let out: string
  let profile: string
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>>

  before(async () => {
    source = await heldSource(released)
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
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  })

  it('shows a transfer in progress on both nodes, live', async (t) => {
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

    const aPort = pair.a.ui.split(':')[1]
    const page = await context.newPage()
    const res = await page.goto(`http://warren.localhost:${aPort}/`, { timeout: 30_000 })
    assert.equal(res?.status(), 200)
    assert.equal(await page.title(), 'Warren')
    const row = '#services tr[data-key="in-service:bulk"]'
    // the page polls once a second; the CSP forbids eval, so the DOM is read through locators
    const value = (p: Page, sel: string): Promise<string | null> =>
      p
        .locator(sel)
        .first()
        .getAttribute('data-value', { timeout: 1_000 })
        .catch(() => null)
    await eventually(
      async () =>
        (await value(page, `${row} .open`)) === '1' && Number(await value(page, `${row} .bytes-out`)) >= SIZE / 2,
      { timeoutMs: 20_000, message: 'the dashboard shows the open stream and its bytes' },
    )
    assert.equal(await page.textContent(`${row} td.mono`), 'bulk')
    assert.equal(await page.getAttribute(`${row} .bytes-out`, 'data-value'), String(SIZE / 2))
    assert.equal(await page.textContent(`${row} .bytes-out`), '2.00 MiB')
    assert.equal(await page.locator(`${row} svg.spark polyline.out`).count(), 1)
    assert.equal(await page.textContent(`#incoming-peers tr[data-key="in-peer:${pair.b.id}"] .open`), '1')
    assert.match((await page.textContent('#state')) ?? '', /^live · updated /)
    const shot = join(out, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    assert.ok((await stat(shot)).size > 10_000)
    t.diagnostic(`screenshot: ${shot}`)

    const bPort = pair.b.ui.split(':')[1]
    const bPage = await context.newPage()
    await bPage.goto(`http://warren.localhost:${bPort}/`, { timeout: 30_000 })
    await eventually(async () => (await value(bPage, '#outgoing tr[data-key="out-service:bulk"] .open')) === '1', {
      timeoutMs: 20_000,
      message: "the client's dashboard shows the outgoing stream",
    })
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
    await page.close()
    await bPage.close()
  })
})
