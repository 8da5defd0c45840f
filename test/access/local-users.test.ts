/**
 * Local users (Linux): the access port and forwards serve only the daemon's own user unless
 * proxy.allowOtherUsers is set. A client running as another user (nobody, via setpriv) is closed at once, with no
 * byte of a response, and the refusal is logged with its uid; the daemon's own user is served the whole blob.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { CAN_CHECK_LOCAL_USERS } from '../../src/access/local-user.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { type RawResult, rawExchange, rawExchangeAs } from '../support/raw-client.ts'
import { ByteSource, blobHttpServer, MiB } from '../support/transfer.ts'

const NOBODY = 65_534
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0
const skip = !CAN_CHECK_LOCAL_USERS
  ? 'not Linux: local users cannot be told apart'
  : process.getuid?.() !== 0
    ? 'needs root to run a client as another user'
    : !hasSetpriv
      ? 'needs setpriv (util-linux)'
      : false

const SIZE = MiB
const DIGEST = ByteSource.digest(SIZE)
const gatewayGet = (port: number) =>
  Buffer.from(`GET /http/n1/blob/blob/${SIZE} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
const plainGet = Buffer.from(`GET /blob/${SIZE} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)

function served(r: RawResult): void {
  assert.equal(r.status, 'HTTP/1.1 200 OK')
  assert.equal(r.bodyBytes, SIZE)
  assert.equal(r.bodySha256, DIGEST)
  assert.equal(r.ending, 'end')
}

function refused(r: RawResult): void {
  assert.equal(r.bytes, 0, 'not one byte of a response')
  assert.ok(r.ending === 'end' || r.ending === 'error:ECONNRESET', `closed at once, got ${r.ending}`)
}

async function start(allowOtherUsers: boolean, logs: string[]) {
  const blob = await blobHttpServer()
  const net: Testnet = await createTestnet(2, {
    services: { 1: { blob: { target: `/tcp/${blob.port}`, type: 'http' }, rblob: `/tcp/${blob.port}` } },
    config: allowOtherUsers ? { 0: { proxy: { allowOtherUsers: true } } } : {},
    log: (level, message) => {
      if (level === 'warn') logs.push(message)
    },
  })
  const access = net.nodes[0]!.status().access!.listen
  const fwd = await net.nodes[0]!.addForward({ node: 'n1', service: 'rblob', listen: '127.0.0.1:0' })
  const port = (listen: string) => Number(listen.slice(listen.lastIndexOf(':') + 1))
  return {
    accessPort: port(access),
    forwardPort: port(fwd.listen),
    stop: async () => {
      await net.stop()
      await blob.close()
    },
  }
}

describe('local users: only the daemon’s own user by default', { skip }, () => {
  const logs: string[] = []
  let s: Awaited<ReturnType<typeof start>>
  before(async () => {
    s = await start(false, logs)
  })
  after(async () => s?.stop())

  it('the access port refuses another local user and logs the uid', async () => {
    refused(await rawExchangeAs(NOBODY, '127.0.0.1', s.accessPort, gatewayGet(s.accessPort)))
    assert.ok(
      logs.includes(
        `the access port refused a connection from local user uid ${NOBODY}: it serves only uid 0 (set proxy.allowOtherUsers to serve every local user)`,
      ),
      logs.join('\n'),
    )
  })

  it('a forward refuses another local user', async () => {
    refused(await rawExchangeAs(NOBODY, '127.0.0.1', s.forwardPort, plainGet))
    assert.ok(logs.some((l) => l.startsWith(`a forward refused a connection from local user uid ${NOBODY}`)))
  })

  it('the refusal is logged once a minute per uid, not per connection', async () => {
    const before = logs.length
    refused(await rawExchangeAs(NOBODY, '127.0.0.1', s.accessPort, gatewayGet(s.accessPort)))
    assert.equal(logs.length, before)
  })

  it('the daemon’s own user is served through the access port and the forward', async () => {
    served(await rawExchange('127.0.0.1', s.accessPort, gatewayGet(s.accessPort)))
    served(await rawExchange('127.0.0.1', s.forwardPort, plainGet))
  })

  it('connections of both users at once through the forward: each user gets its own answer', async () => {
    const results = await Promise.all([
      ...Array.from({ length: 4 }, () => rawExchangeAs(NOBODY, '127.0.0.1', s.forwardPort, plainGet)),
      ...Array.from({ length: 4 }, () => rawExchange('127.0.0.1', s.forwardPort, plainGet)),
    ])
    for (const r of results.slice(0, 4)) refused(r)
    for (const r of results.slice(4)) served(r)
  })
})

describe('local users: proxy.allowOtherUsers serves everyone', { skip }, () => {
  const logs: string[] = []
  let s: Awaited<ReturnType<typeof start>>
  before(async () => {
    s = await start(true, logs)
  })
  after(async () => s?.stop())

  it('another local user is served through the access port and the forward', async () => {
    served(await rawExchangeAs(NOBODY, '127.0.0.1', s.accessPort, gatewayGet(s.accessPort)))
    served(await rawExchangeAs(NOBODY, '127.0.0.1', s.forwardPort, plainGet))
    assert.deepEqual(
      logs.filter((l) => l.includes('refused')),
      [],
    )
  })
})
