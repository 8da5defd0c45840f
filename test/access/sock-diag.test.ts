/**
 * The netlink lookup of a local client's uid (NETLINK_SOCK_DIAG by the exact 4-tuple): a real client held open by
 * another user (nobody, via setpriv) and one of the daemon's own user, over IPv4, IPv6 and IPv4 on a dual-stack
 * listener; the answer matches the `/proc/net` reading, also with the listener's own address given instead of asked
 * of the socket, and a socket that does not exist has no owner.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import { CAN_CHECK_LOCAL_USERS, peerUid, procPeerUid } from '../../src/access/local-user.ts'
import { sockOwner } from '../../src/access/sock-diag.ts'

const NOBODY = 65_534
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0
const skip = !CAN_CHECK_LOCAL_USERS
  ? 'not Linux'
  : process.getuid?.() !== 0
    ? 'needs root to run a client as another user'
    : !hasSetpriv
      ? 'needs setpriv (util-linux)'
      : false

/** A client that connects, writes one byte and holds the connection until its stdin closes. */
const HOLD = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1], () => s.write('x'));
s.on('error', (e) => { console.error(e.message); process.exit(2) }); process.stdin.on('end', () => process.exit(0)); process.stdin.resume()`

interface Held {
  socket: Socket
  child?: ChildProcess
}

const servers: Server[] = []
const held: Held[] = []

after(() => {
  for (const h of held) {
    h.socket.destroy()
    h.child?.stdin?.end()
  }
  for (const s of servers) s.close()
})

/** A listener on `listen`, and the accepted socket of a client connecting to `host` (as `uid` when given). */
async function accepted(listen: string, host: string, uid?: number): Promise<Socket> {
  const server = createServer()
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, listen, r))
  const port = (server.address() as { port: number }).port
  const got = new Promise<Socket>((resolve) => server.once('connection', resolve))
  let child: ChildProcess | undefined
  if (uid === undefined) {
    const c = connect(port, host)
    c.on('error', () => {})
    held.push({ socket: c })
  } else {
    const args = [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      '--clear-groups',
      process.execPath,
      '-e',
      HOLD,
      host,
      String(port),
    ]
    child = spawn('setpriv', args, { stdio: ['pipe', 'ignore', 'inherit'] })
  }
  const socket = await got
  held.push({ socket, ...(child === undefined ? {} : { child }) })
  return socket
}

function tupleOf(s: Socket) {
  return {
    local: s.remoteAddress as string,
    localPort: s.remotePort as number,
    remote: s.localAddress as string,
    remotePort: s.localPort as number,
  }
}

describe('netlink sock_diag: the uid of a local client', { skip }, () => {
  for (const [name, listen, host] of [
    ['IPv4', '127.0.0.1', '127.0.0.1'],
    ['IPv6', '::1', '::1'],
    ['IPv4 on a dual-stack listener', '::', '127.0.0.1'],
  ] as const) {
    it(`${name}: another user's client is seen as that user, the same as in /proc/net`, async () => {
      const s = await accepted(listen, host, NOBODY)
      const owner = sockOwner(tupleOf(s))
      assert.deepEqual(owner, { uid: NOBODY, state: 1 })
      assert.equal(await peerUid(s), NOBODY)
      if (listen !== '::') {
        // the listener's own address, given instead of asked of the socket (a forward bound to one address)
        assert.equal(await peerUid(s, { address: listen, port: s.localPort as number }), NOBODY)
        assert.equal(await peerUid(s, { address: listen, port: 1 }), undefined, 'the given end is the one looked up')
      }
      const t = tupleOf(s)
      assert.equal(await procPeerUid(t.local, t.localPort, t.remote, t.remotePort), NOBODY)
    })

    it(`${name}: the daemon's own user's client is seen as root`, async () => {
      const s = await accepted(listen, host)
      assert.deepEqual(sockOwner(tupleOf(s)), { uid: 0, state: 1 })
      assert.equal(await peerUid(s), 0)
    })
  }

  it('a socket that does not exist has no owner; neither has a tuple that is not an address', async () => {
    const s = await accepted('127.0.0.1', '127.0.0.1', NOBODY)
    const t = tupleOf(s)
    // a port with nothing on it, and the client's tuple after it closed
    assert.equal(sockOwner({ ...t, localPort: 1 }), undefined)
    assert.equal(sockOwner({ ...t, local: 'not an address' }), undefined)
    assert.equal(sockOwner({ ...t, local: '::1' }), undefined)
    const h = held.find((x) => x.socket === s) as Held
    const gone = new Promise((r) => s.once('close', r))
    s.resume()
    h.child?.stdin?.end()
    await gone
    s.destroy()
    // the client closed first: its socket is in TIME_WAIT (no owner) or gone
    assert.equal(sockOwner(t), undefined)
  })
})
