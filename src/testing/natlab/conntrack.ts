/**
 * Parsing of `conntrack -L` output from a lab router, so tests can see which NAT mappings exist and how many bytes each
 * carried (the routers enable `nf_conntrack_acct`).
 *
 * @packageDocumentation
 */

export interface Tuple {
  src: string
  dst: string
  sport: number
  dport: number
  packets: number
  bytes: number
}

export interface ConntrackEntry {
  proto: string
  /** Direction as the first packet went (LAN side, before NAT for outbound flows). */
  original: Tuple
  /** Expected reply direction (after NAT: `dport` is the public port of an outbound flow). */
  reply: Tuple
  /** True unless the entry is still `[UNREPLIED]`. */
  replied: boolean
}

function tuple(fields: Map<string, string>[], i: number): Tuple {
  const f = fields[i] ?? new Map<string, string>()
  return {
    src: f.get('src') ?? '',
    dst: f.get('dst') ?? '',
    sport: Number(f.get('sport') ?? 0),
    dport: Number(f.get('dport') ?? 0),
    packets: Number(f.get('packets') ?? 0),
    bytes: Number(f.get('bytes') ?? 0),
  }
}

/** Parses the default text format of `conntrack -L` (one entry a line, `key=value` pairs, the tuple twice). */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = []
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/)
    const proto = words[0]
    if (proto === undefined || proto === '' || !/^[a-z]+$/.test(proto)) continue
    const tuples: Map<string, string>[] = []
    let current: Map<string, string> | undefined
    for (const w of words) {
      const eq = w.indexOf('=')
      if (eq < 0) continue
      const key = w.slice(0, eq)
      if (key === 'src') {
        current = new Map()
        tuples.push(current)
      }
      if (current !== undefined && !current.has(key)) current.set(key, w.slice(eq + 1))
    }
    if (tuples.length < 2) continue
    out.push({ proto, original: tuple(tuples, 0), reply: tuple(tuples, 1), replied: !line.includes('[UNREPLIED]') })
  }
  return out
}
