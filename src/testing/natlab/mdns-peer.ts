/**
 * A Warren node for the LAN-discovery lab: listens on every address of its namespace (TCP 4781), runs mDNS, knows no
 * relay and no other node. JSON lines with the parent: `ready` out (node id and addresses); `cmd` in with `op: 'ping'`
 * and a node id → `result` out with the lookup (its sources) and the path, or with the error; `cmd` in with
 * `op: 'finish'` → exits.
 *
 * @packageDocumentation
 */
import { validateConfig } from '../../config/load.ts'
import { toWarrenError } from '../../errors.ts'
import { generateNodeKey } from '../../identity/keys.ts'
import { WarrenNode } from '../../node/warren-node.ts'
import { parentChannel } from './lines.ts'

const { chan, done } = parentChannel('mdns-peer', 60_000)

const node = await WarrenNode.start({
  privateKey: await generateNodeKey(),
  config: validateConfig({ listen: ['/ip4/0.0.0.0/tcp/4781'], discovery: { mdns: true } }, 'mdns-peer config'),
  preset: 'test',
  accessListen: false,
})
chan.send({ type: 'ready', id: node.peerId.toString(), addrs: node.identity().addrs })

/** Waits (up to `ms`) until mDNS has heard of `id`, then pings it. */
async function pingByMdns(id: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      const lookup = await node.lookup(id, { all: false })
      const ping = await node.ping(id)
      chan.send({ type: 'result', ok: true, lookup, ping })
      return
    } catch (err) {
      const e = toWarrenError(err)
      if (Date.now() > deadline || e.code !== 'ERR_LOOKUP_FAILED') {
        chan.send({ type: 'result', ok: false, error: e.toJSON() })
        return
      }
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}

for (;;) {
  const msg = await chan.next('cmd', 60_000)
  if (msg.op !== 'ping') break
  await pingByMdns(String(msg.id), 20_000)
}
await node.stop()
done()
process.exit(0)
