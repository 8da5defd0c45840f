/**
 * abortLocal (src/p2p/pipe.ts) against real sockets, and the Node behaviour it works around: `resetAndDestroy()` on a
 * TCP socket whose shutdown is under way (`end()` called, `finish` not yet emitted) is refused by libuv, and Node
 * then never closes the handle: no `close` event, the descriptor stays open, and the process spins at exit.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { abortLocal } from '../../src/p2p/pipe.ts'

let server: Server
let port = 0
const accepted: Socket[] = []

before(async () => {
  server = createServer((s) => {
    s.on('error', () => {})
    accepted.push(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as { port: number }).port
})
after(() => {
  for (const s of accepted) s.destroy()
  server.close()
})

async function client(): Promise<{ socket: Socket; peer: Socket }> {
  const n = accepted.length
  const socket = connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  while (accepted.length === n) await new Promise((r) => setTimeout(r, 5))
  return { socket, peer: accepted.at(-1)! }
}

/** Resolves with how `peer` saw its connection end: 'reset' (ECONNRESET) or 'end' (a FIN), within 5 s. */
function ending(peer: Socket): Promise<'reset' | 'end'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the peer saw no end within 5 s')), 5_000)
    peer.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(err.code === 'ECONNRESET' ? 'reset' : 'end')
    })
    peer.on('end', () => {
      clearTimeout(timer)
      resolve('end')
    })
    peer.resume()
  })
}

/** Resolves on the socket's `close`; fails after 5 s. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the socket did not close within 5 s')), 5_000)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** The child of the upstream check: prints whether the socket closed, then waits to be killed (its exit would spin). */
const UPSTREAM_CHILD = `
const net = require('node:net')
const server = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', () => {
  const socket = net.connect(server.address().port, '127.0.0.1', () => {
    socket.on('error', () => {})
    let closed = false
    socket.on('close', () => { closed = true })
    socket.end()
    process.nextTick(() => {
      socket.resetAndDestroy()
      setTimeout(() => {
        const handles = process._getActiveHandles().filter((h) => h === socket).length
        process.stdout.write(JSON.stringify({ closed, handles }) + '\\n')
      }, 300)
    })
  })
})
`

describe('abortLocal', () => {
  it('Node: resetAndDestroy during a shutdown never closes the socket (the behaviour worked around)', async () => {
    const child = spawn(process.execPath, ['-e', UPSTREAM_CHILD], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer]
      const r = JSON.parse(line.toString()) as { closed: boolean; handles: number }
      // if this fails, Node closes such a socket now: abortLocal's special case can go (UPSTREAM.md)
      assert.deepEqual(r, { closed: false, handles: 1 })
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('closes a socket whose shutdown is under way, and its peer sees the end', async () => {
    const { socket, peer } = await client()
    const seen = ending(peer)
    socket.end()
    await new Promise((r) => process.nextTick(r))
    assert.equal(socket.writableEnded && !socket.writableFinished, true)
    abortLocal(socket, new Error('cut'))
    await closed(socket)
    assert.equal(await seen, 'end')
  })

  it('resets an open socket: its peer sees ECONNRESET', async () => {
    const { socket, peer } = await client()
    const seen = ending(peer)
    abortLocal(socket, new Error('cut'))
    await closed(socket)
    assert.equal(await seen, 'reset')
  })

  it('resets a socket whose shutdown has finished: its peer sees ECONNRESET after the FIN', async () => {
    const { socket, peer } = await client()
    const seen = ending(peer)
    socket.end()
    await once(socket, 'finish')
    abortLocal(socket, new Error('cut'))
    await closed(socket)
    assert.equal(await seen, 'end') // the FIN came first
    const reset = await new Promise<string>((resolve) => {
      peer.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''))
      peer.once('close', () => resolve('closed'))
      peer.write('x')
    })
    assert.match(reset, /ECONNRESET|EPIPE|closed/)
  })
})
