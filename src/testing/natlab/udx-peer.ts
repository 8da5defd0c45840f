/**
 * One side of the raw udx-native direct-path run, inside a lab host, of {@link ./udx-direct-run.ts}. It speaks JSON lines
 * on stdin/stdout with the parent, which plays the part of the relayed signalling connection:
 *
 * 1. `config` in → STUN from one UDP socket to two servers → `ready` out (`mapped`, `nat`: easy|hard)
 * 2. `peer` in (the other side's `ready`) → punch (`armed` out first when opening birthday mappings; `go` in before
 *    random probing) → `direct` out (`ms`, `remote`), or `failed` out
 * 3. one UDX stream on the socket that punched through: the sender writes `bytes` bytes, both sides report SHA-256 and
 *    timing (`sent` / `received`).
 *
 * Every step has a deadline; the process exits by itself.
 *
 * @packageDocumentation
 */
import { createHash, randomBytes } from 'node:crypto'
import UDX, { type UDXSocket, type UDXStream } from 'udx-native'
import { type Endpoint, fromUdx } from '../../p2p/udx/packet-socket.ts'
import { parentChannel, runChild } from './lines.ts'
import { type PunchConfig, stunAndPunch } from './peer-punch.ts'

const { chan, done } = parentChannel('udx-peer')

const udx = new UDX()
const sockets: UDXSocket[] = []
function openSocket(): UDXSocket {
  const s = udx.createSocket()
  s.bind(0, '0.0.0.0')
  sockets.push(s)
  return s
}

async function transfer(cfg: PunchConfig, socket: UDXSocket, remote: Endpoint): Promise<void> {
  const localId = cfg.role === 'send' ? 1 : 2
  const stream: UDXStream = udx.createStream(localId)
  stream.connect(socket, cfg.role === 'send' ? 2 : 1, remote.port, remote.host)
  const hash = createHash('sha256')
  const closed = new Promise<void>((resolve, reject) => {
    stream.once('close', resolve)
    stream.once('error', reject)
  })
  if (cfg.role === 'send') {
    const chunk = randomBytes(1024 * 1024)
    const started = performance.now()
    let sent = 0
    while (sent < cfg.bytes) {
      const piece = chunk.subarray(0, Math.min(chunk.length, cfg.bytes - sent))
      hash.update(piece)
      sent += piece.length
      if (!stream.write(piece)) await new Promise((r) => stream.once('drain', r))
    }
    stream.end()
    stream.resume()
    await closed
    chan.send({ type: 'sent', bytes: sent, sha256: hash.digest('hex'), ms: performance.now() - started })
  } else {
    let received = 0
    let first = 0
    stream.on('data', (d: Buffer) => {
      if (first === 0) first = performance.now()
      received += d.length
      hash.update(d)
    })
    stream.once('end', () => stream.end())
    await closed
    const ms = performance.now() - first
    chan.send({
      type: 'received',
      bytes: received,
      sha256: hash.digest('hex'),
      ms,
      mibps: received / 1048576 / (ms / 1000),
    })
  }
}

async function main(): Promise<void> {
  const cfg = (await chan.next('config', 10_000)) as unknown as PunchConfig
  const primary = openSocket()
  const out = await stunAndPunch(chan, cfg, fromUdx(primary), () => fromUdx(openSocket()))
  if (out.result === undefined) return
  const winner = sockets[out.result.socketIndex]!
  for (const s of sockets) if (s !== winner) await s.close()
  await transfer(cfg, winner, out.result.remote)
  out.session.stop()
}

runChild({ chan, done }, main, async () => {
  for (const s of sockets) if (!s.closing) await s.close().catch(() => undefined)
})
