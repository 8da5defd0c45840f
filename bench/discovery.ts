/**
 * The discovery part of `npm run bench`: lookup latency by node id in a 50-node testnet, cold (the DHT is
 * asked: `fresh`, no cache) and cached, the first ping by id alone (lookup + dial + ping), and the cost of
 * publishing a node's record. Everything runs in this process (src/testing/dht-testnet.ts: 2 relays as DHT servers,
 * nodes on loopback knowing only their relay), so the figures include the event loop shared by all 52 nodes.
 *
 * Two layouts: only the relays are DHT servers (nodes behind NATs), and relays plus `--servers` nodes in server mode
 * (nodes with public addresses), where a lookup takes more than one hop.
 *
 *   node bench/discovery.ts [--nodes 50] [--servers 10] [--cold 200] [--cached 1000] [--pings 50] [--out f.json]
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createDhtTestnet } from '../src/testing/dht-testnet.ts'
import { helpIfAsked } from './help.ts'
import { formatTable, type LatencySummary, summarize } from './stats.ts'

export interface DiscoveryBenchOptions {
  nodes: number
  servers: number
  cold: number
  cached: number
  pings: number
  out?: string
}

interface LayoutResult {
  /** DHT servers besides the 2 relays. */
  nodeServers: number
  coldLookupMs: LatencySummary
  cachedLookupMs: LatencySummary
  firstPingByIdMs: LatencySummary
  publish: { ms: LatencySummary; servers: LatencySummary; recordBytes: number }
  startMs: number
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`)
}

/** Distinct random (asker, target) pairs with asker ≠ target. */
function pairs(n: number, count: number, seed: number): Array<[number, number]> {
  let s = seed
  const rnd = (): number => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31
    return s / 2 ** 31
  }
  const out: Array<[number, number]> = []
  const seen = new Set<string>()
  while (out.length < count && seen.size < n * (n - 1)) {
    const a = Math.floor(rnd() * n)
    const b = Math.floor(rnd() * n)
    if (a === b || seen.has(`${a},${b}`)) continue
    seen.add(`${a},${b}`)
    out.push([a, b])
  }
  return out
}

async function runLayout(opts: DiscoveryBenchOptions, nodeServers: number): Promise<LayoutResult> {
  const t0 = performance.now()
  const net = await createDhtTestnet({ nodes: opts.nodes, relays: 2, servers: nodeServers, batch: 10 })
  try {
    await net.waitPublished(60_000)
    const startMs = Math.round(performance.now() - t0)
    log(`${opts.nodes} nodes + 2 relays (${nodeServers} node servers) up and published in ${startMs} ms`)
    const ids = net.nodes.map((n) => n.peerId)

    // publish cost: every node publishes once more, one at a time
    const pubMs: number[] = []
    const pubServers: number[] = []
    let recordBytes = 0
    for (const n of net.nodes) {
      const r = await n.discovery!.publisher!.publishNow()
      if (!r.ok) throw new Error(`publish failed: ${r.error}`)
      pubMs.push(r.durationMs)
      pubServers.push(r.servers)
      recordBytes = Math.max(recordBytes, r.bytes)
    }

    const cold: number[] = []
    const cached: number[] = []
    for (const [a, b] of pairs(opts.nodes, opts.cold, 7)) {
      const asker = net.nodes[a]!
      const s = performance.now()
      const r = await asker.discovery!.lookup(ids[b]!, { fresh: true })
      cold.push(performance.now() - s)
      if (r.source !== 'dht') throw new Error(`cold lookup answered by ${r.source}`)
    }
    const cachedPairs = pairs(opts.nodes, opts.cold, 7)
    for (let i = 0; i < opts.cached; i++) {
      const [a, b] = cachedPairs[i % cachedPairs.length]!
      const s = performance.now()
      const r = await net.nodes[a]!.discovery!.lookup(ids[b]!)
      cached.push(performance.now() - s)
      if (r.source !== 'cache') throw new Error(`cached lookup answered by ${r.source}`)
    }
    // first contact by id alone: pairs never looked up or connected before
    const pings: number[] = []
    for (const [a, b] of pairs(opts.nodes, opts.pings, 99)) {
      const asker = net.nodes[a]!
      asker.discovery!.resolver.invalidate(ids[b]!)
      await asker.libp2p.hangUp(ids[b]!)
      const s = performance.now()
      await asker.ping(ids[b]!.toString())
      pings.push(performance.now() - s)
    }
    return {
      nodeServers,
      coldLookupMs: summarize(cold),
      cachedLookupMs: summarize(cached),
      firstPingByIdMs: summarize(pings),
      publish: { ms: summarize(pubMs), servers: summarize(pubServers), recordBytes },
      startMs,
    }
  } finally {
    await net.stop()
  }
}

export async function runDiscoveryBench(opts: DiscoveryBenchOptions): Promise<void> {
  const layouts: LayoutResult[] = []
  for (const servers of [0, opts.servers]) layouts.push(await runLayout(opts, servers))
  const rows: string[][] = [['DHT servers', 'lookup', 'count', 'p50 ms', 'p99 ms', 'max ms']]
  for (const l of layouts) {
    const who = l.nodeServers === 0 ? '2 relays' : `2 relays + ${l.nodeServers} nodes`
    for (const [name, s] of [
      ['cold (DHT)', l.coldLookupMs],
      ['cached', l.cachedLookupMs],
      ['first ping by id', l.firstPingByIdMs],
      ['publish', l.publish.ms],
    ] as const) {
      rows.push([who, name, String(s.count), s.p50.toFixed(3), s.p99.toFixed(3), s.max.toFixed(3)])
    }
  }
  process.stdout.write(
    [
      '',
      formatTable(rows),
      '',
      `${opts.nodes} nodes in one process (in-process testnet, loopback), load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}, ${cpus().length} CPUs. "first ping by id" = lookup + dial + ping for a pair never connected.`,
      `publish: ${layouts.map((l) => `${l.publish.recordBytes} B record stored on ${l.publish.servers.p50} server(s) (p50)`).join('; ')}.`,
      '',
    ].join('\n'),
  )
  const date = new Date().toISOString().slice(0, 10)
  const out = opts.out ?? fileURLToPath(new URL(`results/${date}-discovery.json`, import.meta.url))
  await mkdir(fileURLToPath(new URL('results/', import.meta.url)), { recursive: true })
  const doc = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
    settings: opts,
    layouts,
  }
  await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`)
  process.stdout.write(`wrote ${out}\n`)
}

export const DISCOVERY_DEFAULTS: DiscoveryBenchOptions = { nodes: 50, servers: 10, cold: 200, cached: 1000, pings: 50 }

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  helpIfAsked(import.meta.url)
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: String(DISCOVERY_DEFAULTS.nodes) },
      servers: { type: 'string', default: String(DISCOVERY_DEFAULTS.servers) },
      cold: { type: 'string', default: String(DISCOVERY_DEFAULTS.cold) },
      cached: { type: 'string', default: String(DISCOVERY_DEFAULTS.cached) },
      pings: { type: 'string', default: String(DISCOVERY_DEFAULTS.pings) },
      out: { type: 'string' },
    },
  })
  await runDiscoveryBench({
    nodes: Number(values.nodes),
    servers: Number(values.servers),
    cold: Number(values.cold),
    cached: Number(values.cached),
    pings: Number(values.pings),
    ...(values.out === undefined ? {} : { out: values.out }),
  })
  process.exit(0)
}
