/** The relay's listeners: WebSocket, WSS with a certificate, a proxy's announced wss address, and STUN (loopback). */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { bindingRequest, decodeStun, encodeStun, mappedAddress, STUN_BINDING_SUCCESS } from '../../src/stun/codec.ts'
import { startNode, startTestRelay } from '../support/nodes.ts'
import { hashServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

describe('relay listeners (loopback)', () => {
  it('reserves and relays over the WebSocket listener', async () => {
    const hash = await hashServer()
    const relay = await startTestRelay({ ws: { port: 0, host: '127.0.0.1' } })
    try {
      const wsAddr = relay.addrs.find((a) => a.includes('/ws/'))
      assert.ok(wsAddr !== undefined, relay.addrs.join(' '))
      const b = await startNode({
        config: { relays: [wsAddr], services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } } },
      })
      const a = await startNode()
      try {
        assert.equal(b.homeRelay!.status().home, relay.peerId.toString())
        const r = await transfer(await a.openService(b.identity().ticket, 'hash'), 256 * 1024) // under the default 1 MiB limit
        assert.equal(r.answer, `${r.sent} ${r.sha256}`)
      } finally {
        await a.stop()
        await b.stop()
      }
    } finally {
      await relay.stop()
      await hash.close()
    }
  })

  it('serves WSS with the given certificate', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-wss-'))
    const cert = join(dir, 'cert.pem')
    const key = join(dir, 'key.pem')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    )
    const relay = await startTestRelay({ ws: { port: 0, host: '127.0.0.1', cert, key } })
    try {
      const wss = relay.addrs.find((a) => a.includes('/tls/ws/'))
      assert.ok(wss !== undefined, relay.addrs.join(' '))
      const port = Number(/\/tcp\/(\d+)\//.exec(wss)![1])
      const pem = await readFile(cert, 'utf8')
      const served = await new Promise<{ authorized: boolean; fingerprint: string }>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, ca: pem, servername: 'localhost' }, () => {
          resolve({ authorized: s.authorized, fingerprint: s.getPeerX509Certificate()!.fingerprint256 })
          s.destroy()
        })
        s.once('error', reject)
      })
      assert.deepEqual(served, { authorized: true, fingerprint: new X509Certificate(pem).fingerprint256 })
    } finally {
      await relay.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('behind a TLS-terminating proxy: plain ws on 127.0.0.1 and the proxy address announced as /wss', async () => {
    const relay = await startTestRelay({ ws: { port: 0 }, behindProxy: { host: 'relay.example.net' } })
    try {
      assert.ok(relay.addrs.includes(`/dns4/relay.example.net/tcp/443/wss/p2p/${relay.peerId}`), relay.addrs.join(' '))
      assert.ok(
        relay.addrs.some((a) => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//.test(a)),
        relay.addrs.join(' '),
      )
      assert.ok(!relay.addrs.some((a) => a.includes('/tls/ws')), 'the relay itself speaks no TLS behind a proxy')
    } finally {
      await relay.stop()
    }
  })

  it("answers STUN binding requests with the sender's address", async () => {
    const relay = await startTestRelay()
    const sock = createSocket('udp4')
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r))
      const req = bindingRequest()
      const answer = new Promise<Buffer>((resolve) => sock.once('message', resolve))
      sock.send(encodeStun(req), relay.stun!.address.port, '127.0.0.1')
      const msg = decodeStun(await answer)
      assert.equal(msg?.type, STUN_BINDING_SUCCESS)
      assert.deepEqual(mappedAddress(msg!), { host: '127.0.0.1', port: sock.address().port })
      assert.equal(relay.status().stun?.answered, 1)
    } finally {
      sock.close()
      await relay.stop()
    }
  })
})
