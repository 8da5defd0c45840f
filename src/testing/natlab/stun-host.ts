/**
 * Runs a STUN responder inside a lab host: `node stun-host.ts <port>`. Prints one JSON line `{"type":"listening",…}`
 * when ready and exits on SIGTERM or when its standard input closes (so it never outlives the test that started it).
 *
 * @packageDocumentation
 */
import { startStunResponder } from '../../stun/codec.ts'

const port = Number(process.argv[2] ?? 3478)
const responder = await startStunResponder({ host: '0.0.0.0', port })
process.stdout.write(`${JSON.stringify({ type: 'listening', ...responder.address })}\n`)
const stop = (): void => {
  void responder.close().then(() => process.exit(0))
}
process.stdin.on('end', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
