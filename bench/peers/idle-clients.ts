/**
 * Benchmark child: holds idle TCP connections to one echo port, so that more connections than one process may
 * hold files can be spread over several processes. Started as `node idle-clients.ts <port>`, it answers (JSON lines,
 * bench/proc.ts) `open <n>`: opens n more connections, 64 at a time, each sending 8 random bytes and waiting for
 * exactly them back; the answer counts the connections, those whose echo came back whole and identical, and the
 * sha256 of every byte sent and of every byte received (equal when all came back in order). `close 0` closes them.
 */
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { answerCommands } from '../proc.ts'

const port = Number(process.argv[2])
const sockets: Socket[] = []

/** One connection whose 8 bytes came back: resolves with what was sent and what came back. */
function openEchoed(): Promise<{ socket: Socket; sent: Buffer; got: Buffer }> {
  return new Promise((resolve, reject) => {
    const sent = randomBytes(8)
    const parts: Buffer[] = []
    let n = 0
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no echo of 8 bytes within 60 s (${n} came back)`))
    }, 60_000)
    s.once('connect', () => s.write(sent))
    s.on('data', (d: Buffer) => {
      parts.push(d)
      n += d.length
      if (n < sent.length) return
      clearTimeout(timer)
      s.removeAllListeners('data')
      s.on('error', () => {})
      resolve({ socket: s, sent, got: Buffer.concat(parts) })
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

await answerCommands({
  open: async (count: number) => {
    const sentHash = createHash('sha256')
    const gotHash = createHash('sha256')
    let echoed = 0
    let failed = 0
    let firstError: string | undefined
    for (let i = 0; i < count; i += 64) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(64, count - i) }, () => openEchoed()))
      for (const r of batch) {
        if (r.status === 'rejected') {
          failed++
          firstError ??= (r.reason as Error).message
          continue
        }
        sockets.push(r.value.socket)
        sentHash.update(r.value.sent)
        gotHash.update(r.value.got)
        if (r.value.got.equals(r.value.sent)) echoed++
      }
      if (failed > 0) break
    }
    return {
      open: sockets.length,
      echoed,
      failed,
      firstError,
      sentSha256: sentHash.digest('hex'),
      gotSha256: gotHash.digest('hex'),
    }
  },
  close: async () => {
    for (const s of sockets.splice(0)) s.destroy()
    return { open: 0 }
  },
})
