/** `warren ping <node>`: round-trip time and the path in use (`direct <addr>` or `relay <relay id>`). */
import type { Command } from 'commander'
import { WarrenError } from '../errors.ts'
import type { PingResult } from '../node/types.ts'
import { collect, formatPath, say, sayJson, withClient } from './common.ts'

function positiveInt(name: string, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v)
    if (!/^\d+$/.test(v) || n < 1 || n > max) {
      throw new WarrenError('ERR_USAGE', `--${name} ${JSON.stringify(v)} is not a whole number from 1 to ${max}`, {
        hint: `For example --${name} 3.`,
      })
    }
    return n
  }
}

export function register(program: Command): void {
  program
    .command('ping')
    .description('measure the round trip to a node and show whether the path is direct or relayed')
    .argument('<node>', 'alias, node id (either form) or ticket')
    .option('-c, --count <n>', 'pings to send', positiveInt('count', 10_000), 1)
    .option('-i, --interval <ms>', 'time between pings, ms', positiveInt('interval', 3_600_000), 1000)
    .option('--addr <multiaddr>', 'an address of the node, repeatable (when config `peers` has none)', collect)
    .option('--json', 'print as JSON')
    .action(
      async (
        node: string,
        opts: { count: number; interval: number; addr?: string[]; json?: boolean },
        cmd: Command,
      ) => {
        const json = opts.json === true
        const results: PingResult[] = []
        await withClient(cmd, async (c) => {
          for (let i = 0; i < opts.count; i++) {
            if (i > 0) await new Promise((r) => setTimeout(r, opts.interval))
            const r = await c.ping(node, opts.addr ? { addrs: opts.addr } : {})
            results.push(r)
            if (!json) say(`${r.id}: ${r.rttMs.toFixed(2)} ms via ${formatPath(r.path)}`)
          }
        })
        const rtts = results.map((r) => r.rttMs)
        const summary = {
          min: Math.min(...rtts),
          avg: rtts.reduce((a, b) => a + b, 0) / rtts.length,
          max: Math.max(...rtts),
        }
        const last = results.at(-1)!
        if (json) return sayJson({ id: last.id, path: last.path, rttMs: last.rttMs, pings: results, ...summary })
        if (results.length > 1) {
          say(
            `${results.length} pings: min/avg/max ${[summary.min, summary.avg, summary.max].map((v) => v.toFixed(2)).join('/')} ms`,
          )
        }
      },
    )
}
