/**
 * A forward whose check is still running when the node stops (an in-process node): the add fails with
 * ERR_FORWARD_NOT_FOUND naming the forward, and its listener is closed, not left behind the stopped node.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { createTestnet } from '../../src/testing/testnet.ts'
import { eventually } from '../support/eventually.ts'
import { freePort, stalledServer } from '../support/servers.ts'

const OTHER_ID = '12D3KooWFhA6TC6wNfyaBVo4W9QLBwX77k7Jkuwokh3LiMBUqnRz' // a valid id nobody here has

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(undefined)
    })
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code))
  })
}

test('stopping the node while a forward is being checked closes its listener and fails the add', async () => {
  const stalled = await stalledServer() // takes the TCP connection and never speaks: the check cannot finish
  const net = await createTestnet(1)
  try {
    const port = await freePort()
    const adding = net.nodes[0]!.addForward({
      node: OTHER_ID,
      service: 'web',
      listen: `127.0.0.1:${port}`,
      addrs: [`/ip4/127.0.0.1/tcp/${stalled.port}`],
    })
    const outcome = adding.then(
      () => undefined,
      (err: unknown) => err,
    )
    await eventually(() => stalled.accepted() > 0, { message: 'the check dialled the stalled address' })
    assert.deepEqual(net.nodes[0]!.forwards(), [], 'a forward under check is not listed yet')
    await net.stop()
    const err = await outcome
    assert.ok(isWarrenError(err, 'ERR_FORWARD_NOT_FOUND'), String(err))
    assert.equal(err.message, `the forward on 127.0.0.1:${port} was closed while being checked`)
    assert.equal(await connectError(port), 'ECONNREFUSED')
  } finally {
    await net.stop()
    await stalled.close()
  }
})
