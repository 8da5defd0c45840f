/**
 * `warren relay` with discovery flags as a real process: `--routing` serves the Delegated Routing V1 HTTP API,
 * `warren relay status` shows the DHT and the endpoint, and bad values are refused with the field and the fix.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { lineChannel } from '../../src/testing/natlab/lines.ts'
import { runCli, spawnCli } from '../support/cli.ts'

describe('warren relay --routing / --bootstrap', () => {
  const homes: string[] = []
  const home = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-relay-'))
    homes.push(dir)
    // loopback only: the routing port's host and STUN come from relay.json, the port from the flag
    await writeFile(
      join(dir, 'relay.json'),
      JSON.stringify({ stun: { host: '127.0.0.1', port: 0 }, routing: { host: '127.0.0.1', port: 1 } }),
    )
    return dir
  }
  after(async () => {
    await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })))
  })

  it('serves GET /routing/v1/peers/<id> and shows it in warren relay status', async () => {
    const dir = await home()
    const child = spawnCli(['--home', dir, 'relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', '--routing', '0'])
    const stderr: string[] = []
    child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
    try {
      const ready = await lineChannel(child.stdout!, child.stdin!, 'warren relay')
        .next('text', 45_000)
        .catch((err: Error) => {
          throw new Error(`${err.message}\n${stderr.join('')}`)
        })
      const info = JSON.parse(String(ready.text)) as { id: string; routing: { url: string } }
      assert.match(info.routing.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.notEqual(info.routing.url, 'http://127.0.0.1:0')
      const res = await fetch(`${info.routing.url}/routing/v1/peers/${info.id}`)
      assert.equal(res.status, 200)
      assert.deepEqual(await res.json(), { Peers: [] })
      const st = await runCli(['--home', dir, 'relay', 'status'])
      assert.equal(st.code, 0, st.stderr)
      assert.match(st.stdout, /^dht +server, 0 peer\(s\) in the routing table, 0\/50000 records$/m)
      assert.match(
        st.stdout,
        new RegExp(`^routing +${info.routing.url.replaceAll('.', '\\.')}/routing/v1/peers/<id>$`, 'm'),
      )
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
  })

  it('refuses a bad --routing port and a bad --bootstrap address with the fix', async () => {
    const dir = await home()
    const port = await runCli(['--home', dir, 'relay', '--routing', 'http'])
    assert.equal(port.code, 2)
    assert.equal(
      port.stderr,
      'warren: --routing "http" is not a whole number from 0 to 65535\nhint: See `warren relay --help` for what --routing means.\n',
    )
    const boot = await runCli([
      '--home',
      dir,
      'relay',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--bootstrap',
      'relay.example',
    ])
    assert.equal(boot.code, 3)
    assert.match(
      boot.stderr,
      /^warren: .* with the command-line flags are invalid:\n {2}discovery\.bootstrap\[0\]: is not a valid multiaddr/,
    )
    assert.match(
      boot.stderr,
      /hint: Fix the fields named above in relay\.json or the matching flags; docs\/relay\.md describes every key\.\n$/,
    )
    const noId = await runCli(['--home', dir, 'relay', '--bootstrap', '/ip4/127.0.0.1/tcp/4001'])
    assert.equal(noId.code, 3)
    assert.match(
      noId.stderr,
      /\n {2}discovery\.bootstrap\[0\]: does not end with \/p2p\/<relay id>: copy the address from `warren relay status` on that relay\n/,
    )
  })
})
