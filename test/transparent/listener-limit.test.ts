/**
 * The transparent listener at the open-file limit (real sockets on loopback, no capture): a connection past the
 * budget is reset at once, counted as refused and logged once with ERR_FILE_LIMIT, before anything else is asked of
 * it; one under the budget takes a descriptor and gives it back when it closes. (A connection straight to the
 * listener was never redirected, so past the budget it is refused for having no service address.)
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import type { AccessBackend } from '../../src/access/backend.ts'
import { AddressTable } from '../../src/access/service-addresses.ts'
import { TransparentListener } from '../../src/access/transparent/listener.ts'
import { DescriptorBudget } from '../../src/open-files.ts'
import { eventually } from '../support/eventually.ts'

/** How a connection to the listener ended: 'reset', 'closed', with the bytes that came before. */
function ending(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    let bytes = 0
    s.on('data', (d: Buffer) => {
      bytes += d.length
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`${e.code} after ${bytes} bytes`))
    s.on('close', () => resolve(`closed after ${bytes} bytes`))
  })
}

describe('the transparent listener at the open-file limit', { skip: process.platform !== 'linux' }, () => {
  it('resets what is past the budget at once, logs it once, and gives descriptors back', async () => {
    const lines: string[] = []
    // room for one local connection: a limit of the reserve plus one
    const fds = new DescriptorBudget({ limit: 11, reserve: 10 })
    const listener = await TransparentListener.start(
      {
        backend: {} as AccessBackend, // never reached: every connection here is refused before a tunnel
        addresses: new AddressTable(),
        tld: 'warren',
        openTimeoutMs: 1_000,
        log: (level, message) => lines.push(`${level} ${message}`),
      },
      fds,
    )
    try {
      const held = fds.take() // the one slot, taken by another local connection
      assert.ok(held)
      const past = await Promise.all([ending(listener.ports[4]), ending(listener.ports[4])])
      assert.deepEqual(past, ['ECONNRESET after 0 bytes', 'ECONNRESET after 0 bytes'])
      assert.deepEqual(fds.status(), { limit: 11, localConnections: 1, refused: 2 })
      assert.deepEqual(
        lines.filter((l) => l.includes('ERR_FILE_LIMIT')),
        [
          "warn transparent: a connection reset: ERR_FILE_LIMIT: 1 local connections are open, the most this process's " +
            "open-file limit allows (ulimit -n 11, less 10 kept for the node's own use and those of its peer " +
            'connections); raise the limit (ulimit -n, LimitNOFILE= in a systemd unit) or close connections',
        ],
      )
      held()
      // under the budget: admitted, then refused for what it is (no service address), its descriptor given back
      assert.equal(await ending(listener.ports[4]), 'ECONNRESET after 0 bytes')
      assert.equal(lines.filter((l) => l.includes('ERR_FILE_LIMIT')).length, 1)
      assert.ok(
        lines.some((l) => l.startsWith('info transparent: ') && !l.includes('ERR_FILE_LIMIT')),
        lines.join('\n'),
      )
      await eventually(() => fds.status().localConnections === 0, { message: 'the descriptor came back' })
      assert.deepEqual(listener.counters, { accepted: 3, tunneled: 0, refused: 3, active: 0 })
    } finally {
      await listener.close()
    }
  })
})
