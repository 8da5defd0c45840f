/**
 * nftables rulesets for the lab routers: NAT of the chosen kind, a home-router firewall (drop unsolicited inbound and
 * conntrack-invalid packets), and named counters per remote peer and direction so tests can prove where bytes went.
 *
 * @packageDocumentation
 */
import type { NatKind } from './topology.ts'

/** Name of the table every lab router gets (inside the router's own namespace). */
export const LAB_TABLE = 'warrenlab'

/** A remote address on the public segment that gets its own pair of counters `out_<label>` / `in_<label>`. */
export interface CounterTarget {
  label: string
  address: string
}

/**
 * The ruleset of one router. `wan`/`lan` are the interface names inside the router namespace.
 * Counters in the forward chain see LAN addresses before SNAT (outbound) and after de-NAT (inbound), so they are keyed by
 * the remote address: outbound by destination, inbound by source.
 */
export function routerRuleset(
  kind: NatKind,
  targets: readonly CounterTarget[],
  forward: { host: string; tcpPorts: readonly number[] } = { host: '', tcpPorts: [] },
): string {
  const counters = targets.flatMap((t) => [
    `  counter out_${t.label} {}`,
    `  counter in_${t.label} {}`,
    `  counter out_${t.label}_udp {}`,
    `  counter in_${t.label}_udp {}`,
  ])
  const countRules = targets.flatMap((t) => [
    `    oifname "wan" ip daddr ${t.address} counter name "out_${t.label}"`,
    `    iifname "wan" ip saddr ${t.address} counter name "in_${t.label}"`,
    `    oifname "wan" ip daddr ${t.address} meta l4proto udp counter name "out_${t.label}_udp"`,
    `    iifname "wan" ip saddr ${t.address} meta l4proto udp counter name "in_${t.label}_udp"`,
  ])
  // Home-router "port forwarding": TCP ports on the WAN address go to the LAN host (lets tests signal before punching).
  const dnat = forward.tcpPorts.map((p) => `    iifname "wan" tcp dport ${p} dnat ip to ${forward.host}:${p}`)
  const prerouting =
    dnat.length === 0
      ? []
      : ['  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', ...dnat, '  }']
  const nat =
    kind === 'none'
      ? []
      : [
          '  chain postrouting {',
          '    type nat hook postrouting priority srcnat; policy accept;',
          `    oifname "wan" masquerade${kind === 'symmetric' ? ' fully-random' : ''}`,
          '  }',
        ]
  return [
    `table inet ${LAB_TABLE} {`,
    ...counters,
    '  counter fwd_out {}',
    '  counter fwd_in {}',
    '  counter drop_invalid {}',
    '  counter drop_unsolicited {}',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    '    iifname "wan" ct state established,related accept',
    '    iifname "wan" icmp type echo-request accept',
    '    iifname "wan" counter name "drop_unsolicited" drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '    ct state invalid counter name "drop_invalid" drop',
    ...countRules,
    '    iifname "lan" oifname "wan" counter name "fwd_out" accept',
    '    iifname "wan" oifname "lan" ct state established,related counter name "fwd_in" accept',
    ...(kind === 'none' ? ['    iifname "wan" oifname "lan" counter name "fwd_in" accept'] : []),
    ...(dnat.length > 0 ? ['    iifname "wan" oifname "lan" ct status dnat counter name "fwd_in" accept'] : []),
    '    counter name "drop_unsolicited" drop',
    '  }',
    ...prerouting,
    ...nat,
    '}',
    '',
  ].join('\n')
}

export interface Counter {
  packets: number
  bytes: number
}

/** Parses `nft -j list counters table inet warrenlab` into `{ name: { packets, bytes } }`. */
export function parseCounters(json: string): Record<string, Counter> {
  const out: Record<string, Counter> = {}
  const doc = JSON.parse(json) as { nftables?: Array<{ counter?: { name: string; packets: number; bytes: number } }> }
  for (const item of doc.nftables ?? []) {
    if (item.counter !== undefined)
      out[item.counter.name] = { packets: item.counter.packets, bytes: item.counter.bytes }
  }
  return out
}
