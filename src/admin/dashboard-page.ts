/**
 * The `sluice_dashboard` page: one self-contained HTML document (inline CSS and script, no
 * build step, nothing fetched but its own event stream). It opens `?events` on its own URL and
 * redraws from every snapshot: connections, open tunnels, rates over the last minute, upstreams
 * and their servers with state, the fleet's members (with `fleet`), server blocks, recent
 * reloads and errors. All text from the
 * proxy is inserted with textContent, never as HTML.
 */

/** Everything the page needs: its inline style and script, and its own URL for the stream. */
export const DASHBOARD_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
  + "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

const STYLE = `
:root { --bg:#f5f6f8; --card:#fff; --ink:#1d2330; --muted:#5f6b7a; --line:#e2e6eb; --accent:#2563eb;
  --up:#15803d; --warn:#b45309; --bad:#b91c1c; --off:#6b7280; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:12px 24px; background:#111827; color:#f9fafb; }
header h1 { font-size:18px; margin:0; font-weight:650; letter-spacing:.02em; }
header .meta { color:#cbd5e1; font-size:13px; }
header .live { margin-left:auto; display:flex; align-items:center; gap:6px; font-size:13px; }
.dot { width:9px; height:9px; border-radius:50%; background:var(--warn); display:inline-block; }
.live[data-state="live"] .dot { background:#22c55e; }
main { padding:20px 24px 40px; max-width:1400px; margin:0 auto; }
h2 { font-size:15px; margin:26px 0 10px; color:var(--ink); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(160px,1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:26px; font-weight:650; margin-top:2px; font-variant-numeric:tabular-nums; }
.card .sub { color:var(--muted); font-size:12px; font-variant-numeric:tabular-nums; }
.stat { display:flex; flex-direction:column; }
.stat svg { display:block; width:100%; height:28px; margin-top:auto; padding-top:6px; }
.upstreams { display:grid; grid-template-columns:repeat(auto-fill,minmax(520px,1fr)); gap:12px; }
.upstream h3 { margin:0 0 4px; font-size:15px; display:flex; gap:8px; align-items:baseline; flex-wrap:wrap; }
.upstream .figures { color:var(--muted); font-size:13px; margin-bottom:8px; font-variant-numeric:tabular-nums; }
.upstream .figures b { color:var(--ink); }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th { text-align:left; font-weight:600; color:var(--muted); font-size:12px; border-bottom:1px solid var(--line); padding:5px 6px; }
td { padding:5px 6px; border-bottom:1px solid var(--line); }
td.num, th.num { text-align:right; }
tr:last-child td { border-bottom:none; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; background:var(--off); }
.badge.up { background:var(--up); } .badge.full, .badge.draining { background:var(--warn); }
.badge.failed, .badge.unhealthy { background:var(--bad); } .badge.down { background:var(--off); }
.tag { font-size:11px; color:var(--muted); border:1px solid var(--line); border-radius:4px; padding:0 5px; font-weight:500; }
.list { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:4px 14px; }
.list div { padding:6px 0; border-bottom:1px solid var(--line); }
.list div:last-child { border-bottom:none; }
.list time { color:var(--muted); margin-right:10px; font-variant-numeric:tabular-nums; }
.ok { color:var(--up); font-weight:600; } .fail { color:var(--bad); font-weight:600; }
.empty { color:var(--muted); padding:8px 0; }
.cols { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
@media (max-width: 900px) { .cols, .upstreams { grid-template-columns:1fr; } }
`;

const SCRIPT = `
'use strict';
const $ = (sel) => document.querySelector(sel);
function h(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + u[i];
}
function rate(n) { return n >= 100 ? Math.round(n).toString() : n >= 10 ? n.toFixed(1) : n.toFixed(2); }
function duration(ms) {
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d > 0 ? d + 'd ' + hh + 'h' : hh > 0 ? hh + 'h ' + m + 'm' : m > 0 ? m + 'm ' + (s % 60) + 's' : (s % 60) + 's';
}
function clock(t) { return new Date(t).toLocaleTimeString(); }
function spark(values) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 60 20'); svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...values);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', values.map((v, i) => i + ',' + (19 - (v / max) * 18).toFixed(2)).join(' '));
  line.setAttribute('fill', 'none'); line.setAttribute('stroke', '#2563eb'); line.setAttribute('stroke-width', '1');
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(line);
  return svg;
}
function card(label, value, sub, series, id) {
  const v = h('div', { class: 'value' }, value);
  if (id) v.id = id;
  const c = h('div', { class: 'card stat' }, h('div', { class: 'label' }, label), v, h('div', { class: 'sub' }, sub));
  if (series) c.append(spark(series));
  return c;
}
function byClass(counts) {
  const out = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  for (const [code, n] of Object.entries(counts)) { const k = code[0] + 'xx'; if (k in out) out[k] += n; }
  return out;
}
function sum(values) { return values.reduce((a, b) => a + b, 0); }

function render(s) {
  const c = s.connections, r = s.rates, v = s.series.values;
  $('#meta').textContent = 'v' + s.version + ' \\u00b7 ' + (s.workers === 1 ? 'pid ' + s.pids[0] : s.workers + ' workers')
    + ' \\u00b7 up ' + duration(s.time - s.startTime) + ' \\u00b7 ' + clock(s.time)
    + ' \\u00b7 ' + s.viewers.open + (s.viewers.open === 1 ? ' dashboard' : ' dashboards') + ' watching (not counted below)';
  $('#summary').replaceChildren(
    card('Active connections', c.active, 'reading ' + c.reading + ' \\u00b7 writing ' + c.writing + ' \\u00b7 waiting ' + c.waiting),
    card('Open tunnels', s.tunnels.open, s.tunnels.opened + ' opened \\u00b7 ' + s.tunnels.closed + ' closed', v.tunnelsOpened, 'open-tunnels'),
    card('Requests / s', rate(r.requests), sum(v.requests) + ' in the last minute', v.requests),
    card('Handshakes / s', rate(r.handshakes), sum(v.handshakes) + ' in the last minute', v.handshakes),
    card('In / s', bytes(r.bytesReceived), bytes(sum(v.bytesReceived)) + ' in the last minute', v.bytesReceived),
    card('Out / s', bytes(r.bytesSent), bytes(sum(v.bytesSent)) + ' in the last minute', v.bytesSent),
    card('Errors / s', rate(r.errors), sum(v.errors) + ' responses \\u2265 500 in the last minute', v.errors),
  );

  const ups = Object.entries(s.upstreams).sort(([a], [b]) => a.localeCompare(b));
  $('#upstreams').replaceChildren(...(ups.length === 0 ? [h('div', { class: 'empty' }, 'No upstreams.')] : ups.map(([name, u]) => {
    const peers = Object.values(u.peers);
    const tunnels = peers.reduce((n, p) => n + p.tunnels, 0);
    const conns = peers.reduce((n, p) => n + p.active, 0);
    const rows = peers.map((p) => h('tr', { 'data-peer': p.address },
      h('td', {}, p.name === p.address ? p.address : p.name + ' (' + p.address + ')', p.backup ? ' ' : '', p.backup ? h('span', { class: 'tag' }, 'backup') : ''),
      h('td', {}, h('span', { class: 'badge ' + p.state, 'data-state': p.state }, p.state)),
      h('td', { class: 'num' }, p.active),
      h('td', { class: 'num peer-tunnels' }, p.tunnels),
      h('td', { class: 'num' }, p.fails),
      h('td', { class: 'num' }, p.attempts),
      h('td', { class: 'num' }, p.failures),
      h('td', { class: 'num peer-rebalanced' }, u.rebalance ? (p.rebalanceCloses || 0) : '\\u2013'),
      h('td', {}, p.checked ? (p.healthy === s.workers ? 'passing' : 'failing') : '\\u2013'),
    ));
    const closed = Object.entries(u.tunnelsClosed).map(([k, n]) => k + ' ' + n).join(', ');
    return h('section', { class: 'card upstream', 'data-upstream': name },
      h('h3', {}, name, h('span', { class: 'tag' }, u.method.replace('_', ' ')), u.implicit ? h('span', { class: 'tag' }, 'from proxy_pass') : '',
        u.rebalance ? h('span', { class: 'tag', 'data-rebalance': u.rebalance.rebalancing > 0 ? 'rebalancing' : 'balanced' },
          u.rebalance.rebalancing > 0 ? 'rebalancing: ' + u.rebalance.pending + ' to move' : 'balanced') : ''),
      h('div', { class: 'figures' },
        'tunnels ', h('b', { class: 'upstream-tunnels' }, tunnels), ' \\u00b7 connections ', h('b', {}, conns),
        ' \\u00b7 retries ', h('b', {}, u.retries),
        ' \\u00b7 connect avg ', h('b', {}, u.connectTime.count ? (u.connectTime.sum / u.connectTime.count * 1000).toFixed(1) + ' ms' : '\\u2013'),
        closed ? ' \\u00b7 closed: ' + closed : ''),
      h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Server'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Conns'),
          h('th', { class: 'num' }, 'Tunnels'), h('th', { class: 'num' }, 'Fails'), h('th', { class: 'num' }, 'Tries'),
          h('th', { class: 'num' }, 'Failed'), h('th', { class: 'num', title: 'Tunnels closed by websocket_rebalance' }, 'Moved'), h('th', {}, 'Health check'))),
        h('tbody', {}, ...rows)));
  })));

  renderFleet(s.fleet);

  const srvs = Object.entries(s.servers).sort(([a], [b]) => a.localeCompare(b));
  $('#servers').replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Server block'), h('th', { class: 'num' }, 'In flight'), h('th', { class: 'num' }, 'Tunnels'),
      h('th', { class: 'num' }, '2xx'), h('th', { class: 'num' }, '3xx'), h('th', { class: 'num' }, '4xx'), h('th', { class: 'num' }, '5xx'),
      h('th', { class: 'num' }, 'WS 101'), h('th', { class: 'num' }, 'WS refused'), h('th', { class: 'num' }, 'In'), h('th', { class: 'num' }, 'Out'))),
    h('tbody', {}, ...srvs.map(([name, b]) => {
      const k = byClass(b.requests), ws = b.handshakes['101'] || 0;
      return h('tr', { 'data-server': name }, h('td', {}, name), h('td', { class: 'num' }, b.inFlight), h('td', { class: 'num' }, b.tunnels),
        h('td', { class: 'num' }, k['2xx']), h('td', { class: 'num' }, k['3xx']), h('td', { class: 'num' }, k['4xx']), h('td', { class: 'num' }, k['5xx']),
        h('td', { class: 'num' }, ws), h('td', { class: 'num' }, sum(Object.values(b.handshakes)) - ws),
        h('td', { class: 'num' }, bytes(b.bytesReceived)), h('td', { class: 'num' }, bytes(b.bytesSent)));
    }))));

  const rl = s.reloads;
  $('#reload-summary').textContent = rl.ok + ' ok, ' + rl.failed + ' failed';
  $('#reloads').replaceChildren(...(rl.recent.length === 0 ? [h('div', { class: 'empty' }, 'No reloads yet.')] : rl.recent.map((x) => h('div', {},
    h('time', {}, clock(x.time)), h('span', { class: x.ok ? 'ok' : 'fail' }, x.ok ? 'reloaded' : 'reload failed'), ' ', x.file,
    x.drained ? ' \\u00b7 ' + x.drained + ' tunnel(s) to removed servers' : '',
    x.problems.length ? ' \\u00b7 ' + x.problems.join('; ') : ''))));
  $('#errors').replaceChildren(...(s.recentErrors.length === 0 ? [h('div', { class: 'empty' }, 'No errors recorded.')] : s.recentErrors.map((x) => h('div', {},
    h('time', {}, clock(x.time)), x.message))));
}

function renderFleet(f) {
  $('#fleet-section').hidden = !f;
  if (!f) return;
  const state = $('#fleet-state');
  state.className = 'badge ' + (f.redisUp ? 'up' : 'failed');
  state.dataset.state = f.redisUp ? 'up' : 'down';
  state.textContent = f.redisUp ? 'redis up' : 'redis down';
  $('#fleet-meta').textContent = f.url + ' \u00b7 this process ' + f.self + ' \u00b7 '
    + (f.redisUp ? f.members.length + ' member(s) \u00b7 read ' + clock(f.readAt)
      : 'since ' + clock(f.since) + (f.error ? ' (' + f.error + ')' : '') + ': balancing on local counts');
  const members = [...f.members].sort((a, b) => a.name.localeCompare(b.name) || a.pid - b.pid);
  const rows = members.map((m, i) => {
    const view = Object.entries(m.upstreams).sort(([a], [b]) => a.localeCompare(b)).map(([u, servers]) =>
      u + ': ' + Object.entries(servers).map(([addr, v]) => addr + ' ' + v[0] + (v[1] === 'up' ? '' : ' (' + v[1] + ')')).join(' \u00b7 ')).join('; ');
    const first = i === 0 || members[i - 1].name !== m.name;
    return h('tr', { 'data-member': m.id }, h('td', {}, first ? m.name : ''), h('td', {}, m.pid, m.id === f.self ? ' ' : '', m.id === f.self ? h('span', { class: 'tag' }, 'this') : ''),
      h('td', {}, m.host), h('td', { class: 'num member-tunnels' }, m.tunnels), h('td', { class: 'num' }, m.connections), h('td', {}, view));
  });
  $('#fleet').replaceChildren(members.length === 0 ? h('div', { class: 'empty' }, 'No members read.') : h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Instance'), h('th', {}, 'Pid'), h('th', {}, 'Host'), h('th', { class: 'num' }, 'Tunnels'),
      h('th', { class: 'num' }, 'Conns'), h('th', {}, 'Connections per upstream server'))),
    h('tbody', {}, ...rows)));
}

function setLive(on) {
  const el = $('#live');
  el.dataset.state = on ? 'live' : 'reconnecting';
  $('#live-text').textContent = on ? 'live' : 'reconnecting\\u2026';
}
const url = location.pathname + '?events';
const source = new EventSource(url);
source.onmessage = (e) => { setLive(true); render(JSON.parse(e.data)); };
source.onerror = () => setLive(false);
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Sluice</h1><span class="meta" id="meta">connecting\u2026</span>
<span class="live" id="live" data-state="connecting"><span class="dot"></span><span id="live-text">connecting\u2026</span></span></header>
<main>
<section class="cards" id="summary"></section>
<h2>Upstreams</h2>
<div class="upstreams" id="upstreams"><div class="empty">Waiting for the first update\u2026</div></div>
<section id="fleet-section" hidden><h2>Fleet <span class="badge" id="fleet-state"></span></h2>
<div class="figures" id="fleet-meta"></div><div class="card" id="fleet"></div></section>
<h2>Server blocks</h2>
<div class="card" id="servers"></div>
<div class="cols">
<div><h2>Recent reloads <span class="tag" id="reload-summary"></span></h2><div class="list" id="reloads"></div></div>
<div><h2>Recent errors</h2><div class="list" id="errors"></div></div>
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** The page (the same bytes for every request: the data arrives over the event stream). */
export function dashboardPage(): string {
  return PAGE;
}
