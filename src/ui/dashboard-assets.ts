/**
 * The dashboard page, its script and its style, served by src/ui/ui-server.ts with the uPlot charting library
 * (`/uplot.js`, `/uplot.css`, from the installed `uplot` package: nothing is loaded from other origins). The script
 * polls `/status.json` (src/ui/dashboard-status.ts) once a second and draws, live:
 *
 * - the node: id, version, uptime, streams open, access port; its network: home relay and its round trip, NAT
 *   behaviour, public address and UDP reachability (from the NAT check);
 * - two uPlot charts over the last two minutes: throughput (bytes per second, both ways together) per service and
 *   per peer; each chart's element carries `data-series` (the series shown) and `data-max` (the highest rate seen)
 *   for scripts and tests;
 * - the services this node offers, and who used them per service and peer (streams asked for, open, bytes each way,
 *   ends by cause, last use, rate now), the services it uses, the nodes it knows (online, path direct or relayed and via which relay, round trip),
 *   and its forwards with their last error.
 *
 * Every value from the status is written with `textContent`, never parsed as HTML.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Warren</title>
<link rel="stylesheet" href="/uplot.css">
<link rel="stylesheet" href="/dashboard.css">
<script src="/uplot.js" defer></script>
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
    <h2>Network</h2>
    <table id="network"><tbody>
      <tr data-key="home-relay"><th>home relay</th><td class="value mono">-</td></tr>
      <tr data-key="nat"><th>NAT</th><td class="value">-</td></tr>
      <tr data-key="public"><th>public address</th><td class="value mono">-</td></tr>
      <tr data-key="udp"><th>UDP</th><td class="value">-</td></tr>
    </tbody></table>
  </section>
  <section class="charts">
    <div><h2>Throughput per service</h2><div id="chart-services" class="chart" data-series="" data-max="0"></div></div>
    <div><h2>Throughput per peer</h2><div id="chart-peers" class="chart" data-series="" data-max="0"></div></div>
  </section>
  <section>
    <h2>Services this node offers</h2>
    <table id="services"><thead><tr><th>service</th><th>target</th><th>allowed</th><th>open</th><th>in</th><th>out</th><th>ends</th><th>last use</th><th>now</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Who used them</h2>
    <table id="usage"><thead><tr><th>service</th><th>node</th><th>streams</th><th>open</th><th>in</th><th>out</th><th>ends</th><th>last use</th><th>now</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Services this node uses</h2>
    <table id="outgoing"><thead><tr><th>service</th><th>open</th><th>in</th><th>out</th><th>ends</th><th>last use</th><th>now</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Known nodes</h2>
    <table id="peers"><thead><tr><th>node</th><th>online</th><th>path</th><th>rtt</th><th>in</th><th>out</th><th>now</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Forwards</h2>
    <table id="forwards"><thead><tr><th>listen</th><th>to</th><th>open</th><th>served</th><th>failed</th><th>last error</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<footer class="muted">Metrics for Prometheus: <a href="/metrics">/metrics</a>. Rates: bytes per second, in (from the peer) and out (to it); charts: both ways together, last two minutes.</footer>
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
#network th { width: 10rem; }
td.path { word-break: break-all; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
.chart { background: #fff; min-height: 240px; padding: .3rem; }
footer { margin-top: 2rem; }
`

export const DASHBOARD_JS = `'use strict'
const HISTORY = 120
const COLORS = ['#2563eb', '#f97316', '#16a34a', '#9333ea', '#dc2626', '#0891b2', '#ca8a04', '#db2777']
const rows = new Map()
let previous

function bytes(n) {
  if (n < 1024) return Math.round(n) + ' B'
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
function short(id) { return id.length > 16 ? id.slice(0, 8) + '…' + id.slice(-6) : id }
function cell(tr, text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  tr.appendChild(td)
  return td
}
/** The rates (bytes/s, each way) of a tally since the previous poll, kept per row key. */
function rate(key, t, dt) {
  let r = rows.get(key)
  if (!r) { r = { last: t, rin: 0, rout: 0 }; rows.set(key, r) }
  if (dt > 0) {
    r.rin = Math.max(0, (t.bytesIn - r.last.bytesIn) / dt)
    r.rout = Math.max(0, (t.bytesOut - r.last.bytesOut) / dt)
  }
  r.last = t
  return r
}
function rateCell(tr, r) {
  const td = cell(tr, bytes(r.rin) + '/s in, ' + bytes(r.rout) + '/s out', 'num rate')
  td.dataset.value = String(Math.round(r.rin + r.rout))
}

/** A uPlot chart of one rate per series over the last HISTORY polls; rebuilt when the set of series changes. */
class RateChart {
  constructor(el) { this.el = el; this.xs = []; this.ys = new Map(); this.plot = undefined; this.keys = ''; this.max = 0 }
  push(x, values) {
    for (const key of values.keys()) if (!this.ys.has(key)) this.ys.set(key, this.xs.map(() => null))
    this.xs.push(x)
    for (const [key, ys] of this.ys) ys.push(values.has(key) ? values.get(key) : null)
    if (this.xs.length > HISTORY) { this.xs.shift(); for (const ys of this.ys.values()) ys.shift() }
    for (const [key, ys] of [...this.ys]) if (ys.every((v) => v === null)) this.ys.delete(key)
    for (const v of values.values()) this.max = Math.max(this.max, v)
    this.draw()
  }
  draw() {
    if (typeof uPlot !== 'function') { this.el.textContent = 'the charting library did not load'; return }
    const keys = [...this.ys.keys()]
    const data = [this.xs, ...keys.map((k) => this.ys.get(k))]
    this.el.dataset.series = keys.join(',')
    this.el.dataset.max = String(Math.round(this.max))
    this.el.dataset.points = String(this.xs.length)
    if (this.plot && this.keys === keys.join('\\0')) { this.plot.setData(data); return }
    if (this.plot) this.plot.destroy()
    this.el.replaceChildren()
    this.keys = keys.join('\\0')
    const opts = {
      width: Math.max(320, this.el.clientWidth - 8),
      height: 200,
      scales: { x: { time: true } },
      series: [{}, ...keys.map((k, i) => ({
        label: k, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? '-' : bytes(v) + '/s'),
      }))],
      axes: [{}, { size: 96, values: (u, vals) => vals.map((v) => bytes(v) + '/s') }],
    }
    this.plot = new uPlot(opts, data, this.el)
  }
}
const charts = {}

function tallyRow(tbody, name, t, key, dt, lead) {
  const tr = document.createElement('tr')
  tr.dataset.key = key
  const first = cell(tr, name, 'mono')
  first.dataset.name = name
  for (const v of lead || []) if (Array.isArray(v)) cell(tr, v[0], v[1]).dataset.value = v[0]; else cell(tr, v)
  const open = cell(tr, String(t.open), 'num open'); open.dataset.value = String(t.open)
  const bin = cell(tr, bytes(t.bytesIn), 'num bytes-in'); bin.dataset.value = String(t.bytesIn)
  const bout = cell(tr, bytes(t.bytesOut), 'num bytes-out'); bout.dataset.value = String(t.bytesOut)
  cell(tr, ends(t), 'ends')
  cell(tr, ago(t.lastUse), 'last-use')
  const r = rate(key, t, dt)
  rateCell(tr, r)
  tbody.appendChild(tr)
  return r
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
function setNet(key, text, cls) {
  const td = document.querySelector('#network tr[data-key="' + key + '"] td.value')
  td.textContent = text
  td.className = 'value' + (cls ? ' ' + cls : '')
}
function ep(e) { return e.host.includes(':') ? '[' + e.host + ']:' + e.port : e.host + ':' + e.port }
function network(st) {
  const relay = st.relay
  if (!relay) setNet('home-relay', 'no relays configured', 'muted')
  else if (!relay.home) setNet('home-relay', 'none yet (' + relay.relays.length + ' configured)', 'bad')
  else {
    const entry = relay.relays.find((r) => r.id === relay.home)
    setNet('home-relay', relay.home + (entry && entry.rttMs !== undefined ? ' · rtt ' + entry.rttMs.toFixed(1) + ' ms' : ''))
  }
  const n = st.netcheck || { pending: true }
  if (n.pending) { for (const k of ['nat', 'public', 'udp']) setNet(k, 'checking…', 'muted'); return }
  if (n.error !== undefined) { setNet('nat', 'unknown: ' + n.error, 'muted'); setNet('public', '-'); setNet('udp', '-'); return }
  setNet('nat', n.servers.length === 0 ? 'unknown: no relay to ask (config relays)'
    : n.noNat === true ? 'none (the relays see this host’s own address)'
    : n.nat === undefined ? 'unknown (needs answers from two relays)'
    : n.nat === 'easy' ? 'endpoint-independent mapping (direct paths work with most peers)'
    : 'maps each destination to a new port (symmetric: direct only with easy peers, else relayed)')
  if (n.servers.length === 0) { setNet('public', '-'); setNet('udp', '-'); return }
  setNet('public', n.publicAddresses.length ? n.publicAddresses.map(ep).join(', ') : '-')
  setNet('udp', n.udp ? 'yes' : 'no STUN answer over UDP: direct paths will not work, relays will', n.udp ? 'ok' : 'bad')
}
function render(st, dt) {
  document.getElementById('node-id').textContent = st.id
  document.getElementById('summary').textContent = 'version ' + st.version + ' · up ' + Math.round(st.uptimeMs / 1000) + ' s · ' +
    st.streams.active + (st.streams.active === 1 ? ' stream' : ' streams') + ' open (' + st.streams.incoming.active + ' in, ' + st.streams.outgoing.active + ' out) · ' +
    (st.access ? 'access port ' + st.access.listen : 'access port off')
  network(st)
  const inc = st.traffic.incoming, out = st.traffic.outgoing
  const perService = new Map(), perPeer = new Map()
  fill('services', (tb) => {
    for (const s of st.services) {
      const allow = s.allow === undefined ? 'nodes in peers' : s.allow.includes('*') ? 'everyone' : s.allow.join(', ')
      const r = tallyRow(tb, s.name, inc.services[s.name] || EMPTY, 'in-service:' + s.name, dt, [s.target, allow])
      perService.set(s.name + ' (offered)', r.rin + r.rout)
    }
  })
  const names = new Map(st.peers.filter((p) => p.aliases.length).map((p) => [p.id, p.aliases.join(', ')]))
  fill('usage', (tb) => {
    for (const u of st.usage || []) {
      const node = names.has(u.peer) ? names.get(u.peer) + ' (' + short(u.peer) + ')' : u.peer
      const streams = String(u.streams)
      tallyRow(tb, u.service, u, 'use:' + u.service + ':' + u.peer, dt, [[node, 'mono node'], [streams, 'num streams']])
    }
  })
  fill('outgoing', (tb) => {
    for (const [name, t] of Object.entries(out.services)) {
      const r = tallyRow(tb, name, t, 'out-service:' + name, dt)
      perService.set(name + ' (used)', r.rin + r.rout)
    }
  })
  fill('peers', (tb) => {
    for (const p of st.peers) {
      const tr = document.createElement('tr')
      tr.dataset.key = 'peer:' + p.id
      const name = p.aliases.length ? p.aliases.join(', ') : short(p.id)
      cell(tr, p.aliases.length ? name + ' (' + p.id + ')' : p.id, 'mono')
      cell(tr, p.connected ? 'online' : 'offline', p.connected ? 'ok' : 'muted')
      const path = cell(tr, p.path ? (p.path.kind === 'relay' ? 'relayed via ' + (p.path.relay || p.path.addr) : 'direct ' + p.path.addr) : '-', 'mono path')
      path.dataset.value = p.path ? p.path.kind : ''
      const rtt = cell(tr, p.rttMs === undefined ? '-' : p.rttMs.toFixed(1) + ' ms', 'num rtt')
      rtt.dataset.value = p.rttMs === undefined ? '' : String(p.rttMs)
      const t = { bytesIn: (inc.peers[p.id] || EMPTY).bytesIn + (out.peers[p.id] || EMPTY).bytesIn,
                  bytesOut: (inc.peers[p.id] || EMPTY).bytesOut + (out.peers[p.id] || EMPTY).bytesOut }
      cell(tr, bytes(t.bytesIn), 'num bytes-in'); cell(tr, bytes(t.bytesOut), 'num bytes-out')
      const r = rate('peer:' + p.id, t, dt)
      rateCell(tr, r)
      if (p.connected || r.rin + r.rout > 0) perPeer.set(name, r.rin + r.rout)
      tb.appendChild(tr)
    }
  })
  fill('forwards', (tb) => {
    for (const f of st.forwards) {
      const tr = document.createElement('tr')
      tr.dataset.key = 'forward:' + f.listen
      cell(tr, f.listen, 'mono'); cell(tr, f.node + '/' + f.service, 'mono')
      cell(tr, String(f.active), 'num open'); cell(tr, String(f.total), 'num'); cell(tr, String(f.failed), 'num')
      cell(tr, f.lastError ? f.lastError.message + ' (' + f.lastError.code + ', ' + ago(f.lastError.at) + ')' : '-', f.lastError ? 'bad last-error' : 'muted last-error')
      tb.appendChild(tr)
    }
  })
  if (dt > 0) {
    const x = Date.now() / 1000
    charts.services ??= new RateChart(document.getElementById('chart-services'))
    charts.peers ??= new RateChart(document.getElementById('chart-peers'))
    charts.services.push(x, perService)
    charts.peers.push(x, perPeer)
  }
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
