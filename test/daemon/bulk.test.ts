/**
 * 256 MiB of random bytes each way at once through `warren forward` (client → daemon b → daemon a → TCP server),
 * compared by SHA-256 on both ends.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { after, before, test } from 'node:test'
import { runCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'

const TOTAL = 256 * 1024 * 1024
const CHUNK = 1024 * 1024
const LIMIT_MS = 180_000

interface Transfer {
  sent: string
  received: string
  receivedBytes: number
}

/** Sends TOTAL random bytes (with back-pressure) while hashing everything that arrives; ends after sending. */
function duplexTransfer(socket: Socket): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const sentHash = createHash('sha256')
    const recvHash = createHash('sha256')
    let receivedBytes = 0
    let sent = 0
    let sendDone = false
    let recvDone = false
    const finish = (): void => {
      if (sendDone && recvDone)
        resolve({ sent: sentHash.digest('hex'), received: recvHash.digest('hex'), receivedBytes })
    }
    const pump = (): void => {
      while (sent < TOTAL) {
        const chunk = randomBytes(Math.min(CHUNK, TOTAL - sent))
        sentHash.update(chunk)
        sent += chunk.length
        if (!socket.write(chunk)) {
          socket.once('drain', pump)
          return
        }
      }
      socket.end(() => {
        sendDone = true
        finish()
      })
    }
    socket.on('data', (d: Buffer) => {
      recvHash.update(d)
      receivedBytes += d.length
    })
    socket.on('end', () => {
      recvDone = true
      finish()
    })
    socket.on('error', reject)
    pump()
  })
}

let pair: DaemonPair
let server: Server
const serverSide: Promise<Transfer>[] = []

before(async () => {
  server = createServer({ allowHalfOpen: true }, (s) => {
    const t = duplexTransfer(s)
    t.catch(() => {}) // reported when the test awaits it
    serverSide.push(t)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  pair = await startDaemonPair({ bulk: `/tcp/${(server.address() as { port: number }).port}` })
})

after(async () => {
  await pair?.close()
  await new Promise((r) => server?.close(r))
})

test('256 MiB each way at once through a forward arrive intact (SHA-256 on both ends)', {
  timeout: LIMIT_MS,
}, async () => {
  // --no-check: this server starts a 256 MiB transfer on every connection, the service check's too
  const fwd = await runCli(['forward', 'a/bulk', '--no-check', '--json'], { home: pair.bHome.dir })
  assert.equal(fwd.code, 0, fwd.stderr)
  const { listen } = JSON.parse(fwd.stdout) as { listen: string }
  const started = Date.now()
  const socket = tcpConnect({ host: '127.0.0.1', port: Number(listen.split(':')[1]), allowHalfOpen: true })
  let client: Transfer
  let srv: Transfer
  try {
    client = await duplexTransfer(socket)
    srv = await serverSide[0]!
  } catch (err) {
    const logs = `--- daemon b:\n${pair.b.stderr.slice(-2000)}\n--- daemon a:\n${pair.a.stderr.slice(-2000)}`
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err })
  }
  const seconds = (Date.now() - started) / 1000
  socket.destroy()
  assert.equal(client.receivedBytes, TOTAL)
  assert.equal(srv.receivedBytes, TOTAL)
  assert.equal(srv.received, client.sent, 'client → server bytes differ')
  assert.equal(client.received, srv.sent, 'server → client bytes differ')
  const mib = (2 * TOTAL) / (1024 * 1024)
  console.log(
    `# 2 × 256 MiB through a forward in ${seconds.toFixed(1)} s (${(mib / seconds).toFixed(0)} MiB/s both ways together)`,
  )
})
