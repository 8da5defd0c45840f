/** What the benchmark's forwarder children (libp2p-forward.ts, holesail.ts, iroh.ts) share. */
import { connect, type Socket } from 'node:net'

/** Runs `stop` and exits 0 when stdin closes (the parent went away) or on SIGTERM. */
export function exitOnStop(stop: () => Promise<void>): void {
  const done = (): void => {
    void stop().finally(() => process.exit(0))
  }
  process.stdin.on('end', done)
  process.stdin.resume()
  process.on('SIGTERM', done)
}

/** A TCP connection to `port` on 127.0.0.1 (no delay, half-open allowed), once connected. */
export function tcpTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true })
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}
