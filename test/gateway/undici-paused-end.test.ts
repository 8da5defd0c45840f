/**
 * undici 7.30.3 (UPSTREAM.md row 37): when a response body's consumer falls behind, the HTTP/1 parser pauses; if the
 * socket's 'end' comes then, `onHttpSocketEnd` calls `parser.finish()`, which asserts that the parser is not paused,
 * and the throw ends the process. Over a real TCP socket it needs the server's FIN to arrive while the consumer waits;
 * through a service stream it happened on every close-delimited response of about 64 KiB or more on the gateway's
 * full path.
 *
 * - The canary: undici itself, in a child process, with a net.Socket and a consumer that never reads, still dies of
 *   that assertion. When an update of undici makes this fail, the assertion is gone: StreamSocket's deferred end can
 *   go with it.
 * - Warren: the same consumer on a `StreamSocket` (src/http/stream-socket.ts) over a real service stream: the
 *   process lives, and once the consumer reads, the whole body arrives and ends.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Client } from 'undici'
import { StreamSocket } from '../../src/http/stream-socket.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { ByteSource } from '../support/transfer.ts'

/** One message of body after the head: the parser pauses at its end, the stream's FIN right behind it. */
const SIZE = 100 * 1024
/** undici's own report of it: 64 KiB with a Content-Length, the body's last bytes in a read of their own. */
const CANARY_SIZE = 64 * 1024

/** A close-delimited response of SIZE bytes: the head, the body, then the FIN. */
const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n'

/** The same with a Content-Length, as undici's own report of it has it. */
const LENGTH_HEAD = `HTTP/1.1 200 OK\r\ncontent-length: ${CANARY_SIZE}\r\nconnection: close\r\n\r\n`

const CANARY = `
import { createServer } from 'node:net'
import { Client } from 'undici'
const server = createServer((s) => {
  s.once('data', () => { s.write(${JSON.stringify(LENGTH_HEAD)}); s.end(Buffer.alloc(${CANARY_SIZE}, 97)) })
})
server.listen(0, '127.0.0.1', async () => {
  const client = new Client('http://127.0.0.1:' + server.address().port)
  const res = await client.request({ path: '/', method: 'GET' })
  void res // the body is never read: the parser pauses, then the FIN comes
  setTimeout(() => { console.log('alive'); process.exit(0) }, 1500)
})
`

it('canary: undici 7.30.3 ends the process when a socket ends while its parser is paused', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CANARY], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const code = await new Promise<number | null>((r) => child.on('exit', r))
  assert.notEqual(code, 0, `undici no longer dies of it (output: ${out.slice(0, 300)}): the workaround may go`)
  assert.match(out, /assert\(!this\.paused\)/)
})

it('Warren: the same consumer on a StreamSocket over a service stream lives, then reads the whole body', async () => {
  const a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const b = await createNode({ privateKey: await generateNodeKey(), listen: [] })
  const PROTO = '/warren-test/close-delimited/1.0.0'
  try {
    const body = Buffer.concat([
      ...(function* () {
        const src = new ByteSource(SIZE, 4)
        for (let c = src.next(); c !== null; c = src.next()) yield c
      })(),
    ])
    await a.handle(PROTO, (stream: Stream) => {
      stream.addEventListener(
        'message',
        () => {
          stream.send(Buffer.concat([Buffer.from(HEAD), body]))
          void stream.close()
        },
        { once: true },
      )
    })
    const conn = await b.dial(a.getMultiaddrs()[0]!)
    const client = new Client('http://service', {
      connect: (_opts, cb) => {
        conn.newStream(PROTO).then(
          (s) => cb(null, new StreamSocket(s) as never),
          (err: Error) => cb(err, null),
        )
      },
    })
    try {
      const res = await client.request({ path: '/', method: 'GET' })
      // the consumer reads nothing for a while: the parser pauses, the stream's FIN comes meanwhile
      await new Promise((r) => setTimeout(r, 1000))
      const h = createHash('sha256')
      let n = 0
      for await (const chunk of res.body) {
        h.update(chunk as Buffer)
        n += (chunk as Buffer).length
      }
      assert.equal(n, SIZE)
      assert.equal(h.digest('hex'), ByteSource.digest(SIZE, 4))
    } finally {
      await client.destroy()
    }
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
})
