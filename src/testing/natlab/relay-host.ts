/**
 * Runs a Warren relay (circuit relay v2 on TCP 4001 and its STUN responder on UDP 3478) inside a lab host, with limits
 * large enough for the lab's bulk transfers over relayed connections. Prints `{"type":"listening","addrs":[…]}` and
 * stops on SIGTERM or when its standard input closes.
 *
 * @packageDocumentation
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { validateRelayConfig } from '../../relay/server/config.ts'
import { startRelay } from '../../relay/server/relay-node.ts'

const privateKey = await generateKeyPair('Ed25519')
const relay = await startRelay({
  privateKey,
  config: validateRelayConfig({
    listen: ['/ip4/0.0.0.0/tcp/4001'],
    stun: { port: 3478 },
    limits: { dataBytes: 1024 * 1024 * 1024, durationSec: 600 },
  }),
})
process.stdout.write(`${JSON.stringify({ type: 'listening', addrs: relay.addrs, peerId: relay.peerId.toString() })}\n`)
const stop = (): void => {
  void relay.stop().then(() => process.exit(0))
}
process.stdin.on('end', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
