/**
 * The address book is bounded: distinct tickets (a web page can make a browser send thousands through the gateway)
 * cannot grow it, the libp2p peer store or state.json without end; and `allowNewAddresses: false` refuses tickets
 * whose addresses this node does not know, before anything is dialed.
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { isWarrenError } from '../../src/errors.ts'
import { AddressBook, MAX_ADDRS_PER_PEER, MAX_LEARNED_PEERS } from '../../src/identity/address-book.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'

async function ticketOf(addrs: string[]): Promise<{ id: string; ticket: string }> {
  const id = peerIdFromPrivateKey(await generateNodeKey())
  return { id: id.toString(), ticket: encodeTicket({ id, addrs: addrs.map((a) => multiaddr(a)) }) }
}

function throwsWith(fn: () => unknown, code: string, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWarrenError(err), `not a WarrenError: ${err}`)
    assert.equal(err.code, code)
    assert.equal(err.message, message)
    assert.ok(err.hint !== undefined && err.hint.length > 0)
    return true
  })
}

describe('address book bounds', () => {
  it('forgets the least recently used learned node past the bound, never a node in peers', async () => {
    const pinned = await ticketOf(['/ip4/192.0.2.1/tcp/4781'])
    const evicted: string[] = []
    const book = new AddressBook({ home: pinned.ticket }, {}, { maxLearned: 3, onEvict: (id) => evicted.push(id) })
    book.resolve('home') // learns the ticket's address for a node in peers
    const t = await Promise.all([1, 2, 3, 4].map((i) => ticketOf([`/ip4/192.0.2.${10 + i}/tcp/4781`])))
    book.resolve(t[0]!.ticket)
    book.resolve(t[1]!.ticket)
    book.resolve(t[0]!.ticket) // used again: t[1] is now the oldest learned one
    book.resolve(t[2]!.ticket)
    book.resolve(t[3]!.ticket)
    assert.equal(book.size, 4, 'three learned nodes and the one in peers')
    assert.deepEqual(evicted, [t[1]!.id])
    assert.deepEqual(Object.keys(book.learned()).sort(), [pinned.id, t[0]!.id, t[2]!.id, t[3]!.id].sort())
    assert.ok(book.resolve('home').addrs.some((a) => a.toString() === '/ip4/192.0.2.1/tcp/4781'))
  })

  it(`keeps at most ${MAX_ADDRS_PER_PEER} addresses per node, the newest`, async () => {
    const t = await ticketOf(Array.from({ length: 64 }, (_, i) => `/ip4/192.0.2.${i}/tcp/1`))
    const book = new AddressBook()
    const extra = Array.from({ length: 10 }, (_, i) => `/ip4/198.51.100.${i}/tcp/1`)
    book.resolve(t.ticket, extra)
    const kept = book.learned()[t.id]!
    assert.equal(kept.length, MAX_ADDRS_PER_PEER)
    for (const a of extra) assert.ok(kept.includes(a), `${a} kept`)
  })

  it('loads at most the bound from state.json', () => {
    const learned: Record<string, string[]> = {}
    return (async () => {
      for (let i = 0; i < 5; i++) learned[(await ticketOf([])).id] = ['/ip4/192.0.2.1/tcp/1']
      assert.equal(new AddressBook({}, learned, { maxLearned: 2 }).size, 2)
    })()
  })

  it('refuses unknown addresses with allowNewAddresses: false, and learns nothing', async () => {
    const t = await ticketOf(['/ip4/192.0.2.77/tcp/4781'])
    const book = new AddressBook()
    throwsWith(
      () => book.resolve(t.ticket, [], { allowNewAddresses: false }),
      'ERR_UNKNOWN_ADDRESSES',
      `"${t.ticket.slice(0, 37)}…" names addresses of node ${t.id} that this node does not know, and new addresses are not allowed here`,
    )
    assert.equal(book.size, 0)
    // a node id alone names no address: it resolves
    assert.equal(book.resolve(t.id, [], { allowNewAddresses: false }).id.toString(), t.id)
    // once learned (the user gave the ticket on the command line), the same ticket is accepted
    book.resolve(t.ticket)
    const r = book.resolve(t.ticket, [], { allowNewAddresses: false })
    assert.deepEqual(r.addrs.map(String), ['/ip4/192.0.2.77/tcp/4781'])
    // but an extra address it does not know is refused
    assert.throws(
      () => book.resolve(t.ticket, ['/ip4/192.0.2.78/tcp/4781'], { allowNewAddresses: false }),
      (err: unknown) => isWarrenError(err, 'ERR_UNKNOWN_ADDRESSES'),
    )
    // learn: false resolves without remembering
    const u = await ticketOf(['/ip4/192.0.2.79/tcp/4781'])
    book.resolve(u.ticket, [], { learn: false })
    assert.equal(book.learned()[u.id], undefined)
  })
})

describe('idOf: the node a name stands for, without its addresses', () => {
  it('gives the id of an alias, a node id and a ticket, and undefined for anything else', async () => {
    const home = await ticketOf(['/ip4/192.0.2.1/tcp/4781'])
    const other = await ticketOf(['/ip4/192.0.2.2/tcp/4781'])
    const book = new AddressBook({ home: home.ticket, byId: other.id })
    assert.equal(book.idOf('home')?.toString(), home.id)
    assert.equal(book.idOf(' home ')?.toString(), home.id)
    assert.equal(book.idOf('byId')?.toString(), other.id)
    assert.equal(book.idOf(other.id)?.toString(), other.id)
    assert.equal(book.idOf(other.ticket)?.toString(), other.id)
    for (const bad of ['laptop', '', '12D3KooWnotanid', `${other.ticket.slice(0, -4)}AAAA`]) {
      assert.equal(book.idOf(bad), undefined, JSON.stringify(bad))
    }
    // and learns nothing: the addresses of a name are learned where it is resolved
    assert.deepEqual(book.learned(), {})
  })

  it('marks the node as used: its learned addresses are the last to be forgotten', async () => {
    const evicted: string[] = []
    const book = new AddressBook({}, {}, { maxLearned: 2, onEvict: (id) => evicted.push(id) })
    const t = await Promise.all([1, 2, 3].map((i) => ticketOf([`/ip4/192.0.2.${10 + i}/tcp/4781`])))
    book.resolve(t[0]!.ticket)
    book.resolve(t[1]!.ticket)
    assert.equal(book.idOf(t[0]!.ticket)?.toString(), t[0]!.id) // used again: t[1] is now the oldest
    book.resolve(t[2]!.ticket)
    assert.deepEqual(evicted, [t[1]!.id])
  })
})

describe('a node fed thousands of distinct tickets with dead addresses', () => {
  const N = MAX_LEARNED_PEERS + 476
  let net: Testnet
  let listener: Server
  let accepted = 0
  let port = 0
  const sockets = new Set<Socket>()

  before(async () => {
    // an arbitrary TCP listener (not Warren): it answers and closes, as the audit's did
    listener = createServer((s) => {
      accepted++
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
      s.on('error', () => {})
      s.end('HTTP/1.0 400 Bad Request\r\n\r\n')
    })
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r))
    port = (listener.address() as { port: number }).port
    // no UDX transport: its native sockets are not what this test is about
    net = await createTestnet(2, {
      config: { 0: { traversal: { enabled: false } }, 1: { traversal: { enabled: false } } },
    })
  })

  after(async () => {
    await net?.stop()
    for (const s of sockets) s.destroy()
    await new Promise((r) => listener.close(r))
  })

  it('refuses a ticket with new addresses before dialing when asked to (allowNewAddresses: false)', async () => {
    const t = await ticketOf([`/ip4/127.0.0.1/tcp/${port}`])
    await assert.rejects(net.nodes[0]!.connect(t.ticket, { allowNewAddresses: false }), (err: unknown) => {
      assert.ok(isWarrenError(err, 'ERR_UNKNOWN_ADDRESSES'))
      return true
    })
    assert.equal(accepted, 0, 'nothing was dialed')
    // a node it knows still connects that way
    const conn = await net.nodes[0]!.connect(net.ticket(1), { allowNewAddresses: false })
    assert.equal(conn.remotePeer.toString(), net.nodes[1]!.peerId.toString())
  })

  it(`keeps at most ${MAX_LEARNED_PEERS} learned nodes and as many peer-store entries after ${N} tickets`, async () => {
    const node = net.nodes[0]!
    const tickets = await Promise.all(Array.from({ length: N }, () => ticketOf([`/ip4/127.0.0.1/tcp/${port}`])))
    const codes = new Map<string, number>()
    let next = 0
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < tickets.length) {
          const t = tickets[next++]!
          await node.connect(t.ticket).then(
            () => codes.set('connected', (codes.get('connected') ?? 0) + 1),
            (err: { code?: string }) => codes.set(err.code ?? 'none', (codes.get(err.code ?? 'none') ?? 0) + 1),
          )
        }
      }),
    )
    assert.deepEqual([...codes], [['ERR_DIAL_FAILED', N]])
    assert.ok(accepted >= N, 'every ticket was dialed (the listener saw them)')
    // + 1: n1, the node in peers, which is never evicted
    assert.ok(node.addressBook.size <= MAX_LEARNED_PEERS + 1, `address book holds ${node.addressBook.size}`)
    assert.ok(Object.keys(node.learnedAddresses()).length <= MAX_LEARNED_PEERS + 1)
    const stored = (await node.libp2p.peerStore.all()).length
    assert.ok(stored <= MAX_LEARNED_PEERS + 2, `peer store holds ${stored}`)
    // the node in peers is still known and reachable
    const conn = await node.connect('n1')
    assert.equal(conn.remotePeer.toString(), net.nodes[1]!.peerId.toString())
  })
})
