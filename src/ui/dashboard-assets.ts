/**
 * The dashboard page, its script and its style, served by src/ui/ui-server.ts. The script polls `/status.json`
 * once a second and draws, live: the node (id, uptime, access port, home relay), the services it offers with who
 * used them (streams open, bytes each way, ends by cause, last use), the nodes it knows (online, path direct or
 * relayed and through which relay), its forwards with their last error, and a throughput sparkline per service and
 * per peer, each way. No charting library is installed, so the sparklines are plain SVG polylines. Every value from
 * the status is written with `textContent`, never parsed as HTML.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Warren</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>Warren <span id="node-id" class="mono"></span></h1>
  <p id="summary"></p>
  <p id="state" class="muted">connecting…</p>
</header>
<main>
  <section>
    <h2>Services this node offers</h2>
    <table id="services"><thead><tr><th>service</th><th>target</th><th>allowed</th><th>open</th><th>in</th><th>out</th><th>ends</th><th>last use</th><th>throughput</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Who used them</h2>
    <table id="incoming-peers"><thead><tr><th>node</th><th>open</th><th>in</th><th>out</th><th>ends</th><th>last use</th><th>throughput</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Services this node uses</h2>
    <table id="outgoing"><thead><tr><th>service</th><th>open</th><th>in</th><th>out</th><th>ends</th><th>last use</th><th>throughput</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Known nodes</h2>
    <table id="peers"><thead><tr><th>node</th><th>online</th><th>path</th><th>in</th><th>out</th><th>throughput</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Forwards</h2>
    <table id="forwards"><thead><tr><th>listen</th><th>to</th><th>open</th><th>served</th><th>failed</th><th>last error</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<footer class="muted">Metrics for Prometheus: <a href="/metrics">/metrics</a>. Throughput: bytes per second over the last minute (in, out).</footer>
</body>
</html>
`

export const DASHBOARD_CSS = `body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2433; background: #f7f8fa; }
h1 { font-size: 1.3rem; margin: 0; } h2 { font-size: 1rem; margin: 1.5rem 0 .4rem; }
.mono, td.mono { font-family: ui-monospace, monospace; font-size: 12px; }
.muted { color: #6b7280; } .bad { color: #b42318; } .ok { color: #067647; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e5e7eb; vertical-align: middle; }
th { font-weight: 600; color: #4b5563; font-size: 12px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
svg.spark { display: block; background: #f3f4f6; } svg.spark .in { stroke: #2563eb; } svg.spark .out { stroke: #f97316; }
svg.spark polyline { fill: none; stroke-width: 1.5; }
footer { margin-top: 2rem; }
`

export const DASHBOARD_JS = `'use strict'
const HISTORY = 60
const series = new Map()
let previous

function bytes(n) {
  if (n < 1024) return n + ' B'
  const u = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024, i = 0
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++ }
  return v.toFixed(v < 10 ? 2 : 1) + ' ' + u[i]
}
function ago(ms) {
  if (ms === undefined) return 'never'
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'
}
function ends(t) {
  const parts = Object.entries(t.ends || {}).filter(([, n]) => n > 0).map(([c, n]) => n + ' ' + c)
  return parts.length ? parts.join(', ') : '-'
}
function cell(tr, text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  tr.appendChild(td)
  return td
}
/** Records a tally's bytes for the sparkline of key; returns the rates (bytes/s) seen so far. */
function record(key, t, dt) {
  let s = series.get(key)
  if (!s) { s = { last: t, rin: [], rout: [] }; series.set(key, s) }
  if (dt > 0) {
    s.rin.push(Math.max(0, (t.bytesIn - s.last.bytesIn) / dt))
    s.rout.push(Math.max(0, (t.bytesOut - s.last.bytesOut) / dt))
    if (s.rin.length > HISTORY) { s.rin.shift(); s.rout.shift() }
  }
  s.last = t
  return s
}
const SVG = 'http://www.w3.org/2000/svg'
function sparkline(s) {
  const w = 160, h = 28
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('class', 'spark'); svg.setAttribute('width', w); svg.setAttribute('height', h)
  // newest sample at the right edge, one minute across
  const max = Math.max(1, ...s.rin, ...s.rout)
  for (const [cls, data] of [['in', s.rin], ['out', s.rout]]) {
    const line = document.createElementNS(SVG, 'polyline')
    line.setAttribute('class', cls)
    line.setAttribute('points', data.map((v, i) => (w - (data.length - 1 - i) * w / (HISTORY - 1)).toFixed(1) + ',' + (h - 1 - v / max * (h - 2)).toFixed(1)).join(' '))
    svg.appendChild(line)
  }
  const title = document.createElementNS(SVG, 'title')
  title.textContent = 'now: ' + bytes(s.rin.at(-1) || 0) + '/s in, ' + bytes(s.rout.at(-1) || 0) + '/s out'
  svg.appendChild(title)
  return svg
}
function tallyRow(tbody, name, t, key, dt, lead) {
  const tr = document.createElement('tr')
  tr.dataset.key = key
  const first = cell(tr, name, 'mono')
  first.dataset.name = name
  for (const v of lead || []) cell(tr, v)
  const open = cell(tr, String(t.open), 'num open'); open.dataset.value = String(t.open)
  const bin = cell(tr, bytes(t.bytesIn), 'num bytes-in'); bin.dataset.value = String(t.bytesIn)
  const bout = cell(tr, bytes(t.bytesOut), 'num bytes-out'); bout.dataset.value = String(t.bytesOut)
  cell(tr, ends(t), 'ends')
  cell(tr, ago(t.lastUse), 'last-use')
  cell(tr, '').appendChild(sparkline(record(key, t, dt)))
  tbody.appendChild(tr)
}
const EMPTY = { bytesIn: 0, bytesOut: 0, open: 0, ends: {} }
function fill(id, rows) {
  const tbody = document.querySelector('#' + id + ' tbody')
  tbody.replaceChildren()
  rows(tbody)
  if (!tbody.children.length) {
    const tr = document.createElement('tr')
    const td = cell(tr, 'none yet', 'muted'); td.colSpan = 9
    tbody.appendChild(tr)
  }
}
function render(st, dt) {
  document.getElementById('node-id').textContent = st.id
  const relay = st.relay ? (st.relay.home ? 'home relay ' + st.relay.home : 'no home relay yet') : 'no relays configured'
  document.getElementById('summary').textContent = 'version ' + st.version + ' · up ' + Math.round(st.uptimeMs / 1000) + ' s · ' +
    st.streams.active + (st.streams.active === 1 ? ' stream' : ' streams') + ' open (' + st.streams.incoming.active + ' in, ' + st.streams.outgoing.active + ' out) · ' +
    (st.access ? 'access port ' + st.access.listen : 'access port off') + ' · ' + relay
  const inc = st.traffic.incoming, out = st.traffic.outgoing
  fill('services', (tb) => {
    for (const s of st.services) {
      const allow = s.allow === undefined ? 'nodes in peers' : s.allow.includes('*') ? 'everyone' : s.allow.join(', ')
      tallyRow(tb, s.name, inc.services[s.name] || EMPTY, 'in-service:' + s.name, dt, [s.target, allow])
    }
  })
  fill('incoming-peers', (tb) => {
    for (const [id, t] of Object.entries(inc.peers)) tallyRow(tb, id, t, 'in-peer:' + id, dt)
  })
  fill('outgoing', (tb) => {
    for (const [name, t] of Object.entries(out.services)) tallyRow(tb, name, t, 'out-service:' + name, dt)
  })
  fill('peers', (tb) => {
    for (const p of st.peers) {
      const tr = document.createElement('tr')
      cell(tr, p.aliases.length ? p.aliases.join(', ') + ' (' + p.id + ')' : p.id, 'mono')
      cell(tr, p.connected ? 'online' : 'offline', p.connected ? 'ok' : 'muted')
      cell(tr, p.path ? (p.path.kind === 'relay' ? 'relayed via ' + (p.path.relay || p.path.addr) : 'direct ' + p.path.addr) : '-', 'mono')
      const t = { bytesIn: (inc.peers[p.id] || EMPTY).bytesIn + (out.peers[p.id] || EMPTY).bytesIn,
                  bytesOut: (inc.peers[p.id] || EMPTY).bytesOut + (out.peers[p.id] || EMPTY).bytesOut }
      cell(tr, bytes(t.bytesIn), 'num'); cell(tr, bytes(t.bytesOut), 'num')
      cell(tr, '').appendChild(sparkline(record('peer:' + p.id, t, dt)))
      tb.appendChild(tr)
    }
  })
  fill('forwards', (tb) => {
    for (const f of st.forwards) {
      const tr = document.createElement('tr')
      cell(tr, f.listen, 'mono'); cell(tr, f.node + '/' + f.service, 'mono')
      cell(tr, String(f.active), 'num'); cell(tr, String(f.total), 'num'); cell(tr, String(f.failed), 'num')
      cell(tr, f.lastError ? f.lastError.message : '-', f.lastError ? 'bad' : 'muted')
      tb.appendChild(tr)
    }
  })
}
async function tick() {
  const state = document.getElementById('state')
  try {
    const res = await fetch('/status.json', { cache: 'no-store' })
    if (!res.ok) throw new Error('HTTP ' + res.status)
    const st = await res.json()
    const now = performance.now()
    render(st, previous === undefined ? 0 : (now - previous) / 1000)
    previous = now
    state.textContent = 'live · updated ' + new Date().toLocaleTimeString()
    state.className = 'muted'
  } catch (err) {
    state.textContent = 'cannot reach the daemon: ' + err.message
    state.className = 'bad'
  }
  setTimeout(tick, 1000)
}
tick()
`
