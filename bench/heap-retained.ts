/**
 * `node bench/heap-retained.ts <file.heapsnapshot>`: what the libp2p connections in a heap snapshot hold through
 * parts of them. For every js-libp2p `Connection` object (one with `muxer` and `maConn` properties), the bytes that
 * would no longer be reachable from the roots if the properties named by `--fields` (default `muxer,maConn`) led
 * nowhere, per connection; then the same with every net.Socket's listeners (`_events`) cut as well, by object kind.
 * That is what a connection would shed if it kept its socket and Noise keys but not js-libp2p's muxer, encrypted
 * stream and socket wrapper: the upper bound of a leaner idle connection. Snapshots come from bench/relay-heap.ts
 * (`--snapshot --keep-snapshots <dir>`).
 *
 *   node bench/heap-retained.ts <file.heapsnapshot> [--fields muxer,maConn] [--top 30] [--out file.json]
 */
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { argsOrExit, helpIfAsked } from './help.ts'

helpIfAsked(import.meta.url)
const { values: args, positionals } = argsOrExit('heap-retained', {
  allowPositionals: true,
  options: {
    fields: { type: 'string', default: 'muxer,maConn' },
    top: { type: 'string', default: '30' },
    out: { type: 'string' },
  },
})
if (positionals.length !== 1) {
  process.stderr.write('heap-retained: give one .heapsnapshot file (see --help)\n')
  process.exit(2)
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } }
  nodes: number[]
  edges: number[]
  strings: string[]
}
const snap = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Snapshot
const { meta } = snap.snapshot
const NW = meta.node_fields.length
const EW = meta.edge_fields.length
const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) =>
  meta.node_fields.indexOf(f),
)
const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f))
const { nodes, edges, strings } = snap
const count = nodes.length / NW
const firstEdge = new Uint32Array(count + 1)
for (let i = 0, e = 0; i < count; i++) {
  firstEdge[i] = e
  e += nodes[i * NW + iEdges!]! * EW
}
firstEdge[count] = edges.length
const typeOf = (i: number): string => meta.node_types[0][nodes[i * NW + iType!]!]!
const nameOf = (i: number): string => strings[nodes[i * NW + iName!]!]!
const sizeOf = (i: number): number => nodes[i * NW + iSize!]!

/** Named property edges of node `i`: [name, target]. */
function properties(i: number): [string, number][] {
  const out: [string, number][] = []
  for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EW) {
    if (meta.edge_types[0][edges[e + eType!]!] === 'property')
      out.push([strings[edges[e + eName!]!]!, edges[e + eTo!]! / NW])
  }
  return out
}

/** Marks what the roots reach, not passing through `cut` nor along weak edges. */
function reach(cut: Set<number>): Uint8Array {
  const seen = new Uint8Array(count)
  const stack = [0]
  seen[0] = 1
  while (stack.length > 0) {
    const i = stack.pop()!
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EW) {
      const t = meta.edge_types[0][edges[e + eType!]!]
      if (t === 'weak' || t === 'shortcut') continue
      const to = edges[e + eTo!]! / NW
      if (seen[to] === 1 || cut.has(to)) continue
      seen[to] = 1
      stack.push(to)
    }
  }
  return seen
}

const fields = args.fields.split(',')
const connections: number[] = []
for (let i = 0; i < count; i++) {
  if (typeOf(i) !== 'object' || nameOf(i) !== 'Connection') continue
  const names = new Set(properties(i).map(([n]) => n))
  if (names.has('muxer') && names.has('maConn')) connections.push(i)
}
if (connections.length === 0) {
  process.stderr.write('heap-retained: no libp2p Connection objects in this snapshot\n')
  process.exit(1)
}
const cutFields = new Set<number>()
for (const c of connections) for (const [n, to] of properties(c)) if (fields.includes(n)) cutFields.add(to)
const cutListeners = new Set(cutFields)
for (let i = 0; i < count; i++) {
  if (typeOf(i) === 'object' && nameOf(i) === 'Socket') {
    for (const [n, to] of properties(i)) if (n === '_events') cutListeners.add(to)
  }
}

const all = reach(new Set())
const total = (seen: Uint8Array): number => {
  let t = 0
  for (let i = 0; i < count; i++) if (seen[i] === 1) t += sizeOf(i)
  return t
}
const allBytes = total(all)
const withoutFields = total(reach(cutFields))
const rest = reach(cutListeners)
const withoutListeners = total(rest)
const kinds = new Map<string, [number, number]>()
for (let i = 0; i < count; i++) {
  if (all[i] !== 1 || rest[i] === 1) continue
  const t = typeOf(i)
  const key = t === 'object' || t === 'closure' || t === 'native' ? `${t}:${nameOf(i) || '(anonymous)'}` : t
  const row = kinds.get(key) ?? [0, 0]
  row[0]++
  row[1] += sizeOf(i)
  kinds.set(key, row)
}
const n = connections.length
const perConn = (bytes: number): number => bytes / n / 1024
const result = {
  snapshot: positionals[0],
  connections: n,
  liveMiB: allBytes / 1024 / 1024,
  fields,
  perConnectionKiB: perConn(allBytes - withoutFields),
  perConnectionWithSocketListenersKiB: perConn(allBytes - withoutListeners),
  kinds: [...kinds]
    .sort((a, b) => b[1][1] - a[1][1])
    .slice(0, Number(args.top))
    .map(([kind, [c, bytes]]) => ({ kind, perConnection: c / n, bytesPerConnection: bytes / n })),
}
process.stdout.write(
  `${n} connections, ${result.liveMiB.toFixed(1)} MiB reachable\n` +
    `held only through ${fields.join(', ')}: ${result.perConnectionKiB.toFixed(2)} KiB per connection\n` +
    `and through the sockets' listeners too: ${result.perConnectionWithSocketListenersKiB.toFixed(2)} KiB per connection\n` +
    'kind                                            count / conn.   B / conn.\n',
)
for (const k of result.kinds) {
  process.stdout.write(
    `${k.kind.padEnd(48)}${k.perConnection.toFixed(2).padStart(14)}${k.bytesPerConnection.toFixed(0).padStart(12)}\n`,
  )
}
if (args.out !== undefined) await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`)
