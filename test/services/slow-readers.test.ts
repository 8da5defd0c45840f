/**
 * Readers and writers slower than the network, through `warren forward` between two real daemons and through raw
 * `/x/` streams: every transfer arrives whole (SHA-256 of all of it) and ends cleanly. Sizes are several times the
 * 2 MiB stream window so that a lost pause or a window granted twice would overflow (`npm run soak` runs larger
 * ones). The daemons are separate processes so that the sender runs at full speed while the reader lags.
 */
import assert from 'node:assert/strict'
import { connect, createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { pipeStream } from '../../src/p2p/pipe.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { type DaemonPair, dialForward, forwardEach, startDaemonPair } from '../support/daemon-pair.ts'
import {
  ByteSource,
  MiB,
  pace,
  pacedHashServer,
  pump,
  type ReadPace,
  readPaced,
  sourceServer,
} from '../support/transfer.ts'

type Closer = { port: number; close(): Promise<void> }

/** Each case: a reader's pace and how many bytes it moves. */
const CASES: { name: string; pace: ReadPace; bytes: number }[] = [
  { name: '1 MiB/s', pace: pace.mibps(1), bytes: 6 * MiB },
  { name: '10 MiB/s', pace: pace.mibps(10), bytes: 24 * MiB },
  { name: '40 MiB/s', pace: pace.mibps(40), bytes: 64 * MiB },
  { name: 'bursts', pace: pace.bursts(40, 160), bytes: 48 * MiB },
]

describe('slow readers and writers through a forward between two daemons', () => {
  let pair: DaemonPair
  const servers: Closer[] = []
  let fwd = new Map<string, string>()

  before(async () => {
    const services: Record<string, string> = {}
    for (const [i, c] of CASES.entries()) {
      const src = await sourceServer(c.bytes, i + 1)
      const sink = await pacedHashServer(c.pace)
      servers.push(src, sink)
      services[`src${i}`] = `/tcp/${src.port}`
      services[`sink${i}`] = `/tcp/${sink.port}`
    }
    pair = await startDaemonPair(services)
    fwd = await forwardEach(pair, Object.keys(services))
  })

  after(async () => {
    await pair?.close()
    await Promise.all(servers.map((s) => s.close()))
  })

  for (const [i, c] of CASES.entries()) {
    it(`downloads ${c.bytes / MiB} MiB whole to a reader at ${c.name} through a forward`, async () => {
      const s = dialForward(fwd.get(`src${i}`)!)
      s.end() // the client half-closes at once, as `printf … | nc` does
      const r = await readPaced(s, c.pace)
      assert.deepEqual(r, { bytes: c.bytes, sha256: ByteSource.digest(c.bytes, i + 1), ending: 'end' })
    })

    it(`uploads ${c.bytes / MiB} MiB whole to a service reading at ${c.name} through a forward`, async () => {
      const s = dialForward(fwd.get(`sink${i}`)!)
      const answer = readPaced(s, pace.fast)
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      await pump(new ByteSource(c.bytes, i + 1), s)
      const r = await answer
      assert.equal(r.ending, 'end')
      assert.equal(Buffer.concat(chunks).toString(), `${c.bytes} ${ByteSource.digest(c.bytes, i + 1)}`)
    })
  }
})

describe('slow readers of raw /x/ streams', () => {
  let net: Testnet
  let raw: Closer
  before(async () => {
    raw = await sourceServer(24 * MiB, 9)
    net = await createTestnet(2, { services: { 1: { raw: { target: `/tcp/${raw.port}`, kubo: true } } } })
  })
  after(async () => {
    await net?.stop()
    await raw?.close()
  })

  it('delivers a raw /x/ stream whole to a reader at 10 MiB/s', async () => {
    // the /x/ stream is joined to a local socket whose far end reads slowly: the stream must pause, not overflow
    const conn = await net.nodes[0]!.connect('n1')
    const stream = await conn.newStream('/x/raw')
    const local = createServer({ allowHalfOpen: true }, (sock) => {
      void pipeStream(stream, sock)
    })
    await new Promise<void>((r) => local.listen(0, '127.0.0.1', r))
    try {
      const s = connect({ host: '127.0.0.1', port: (local.address() as { port: number }).port, allowHalfOpen: true })
      s.end()
      const r = await readPaced(s, pace.mibps(10))
      assert.deepEqual(r, { bytes: 24 * MiB, sha256: ByteSource.digest(24 * MiB, 9), ending: 'end' })
    } finally {
      local.close()
    }
  })
})
