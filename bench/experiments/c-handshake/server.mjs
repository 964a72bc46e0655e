#!/usr/bin/env node
// The C handshake experiment's proxy (issue 15, item 2; docs/benchmarks.md, "The handshake in C:
// a prototype measured"): the addon accepts, parses and answers WebSocket handshakes in C, asks
// `route` below once per handshake where each goes, and relays the tunnels with Sluice's native
// relay; JavaScript hears of each tunnel once more when it ends.
//
//   node bench/experiments/c-handshake/server.mjs --backend 127.0.0.1:PORT [--backend ...]
//        [--route js|c] [--listen 127.0.0.1:PORT]
//
// --route c: the round robin and the upstream head in C, no JavaScript per handshake (to measure
// what the call costs). Prints `listening on HOST:PORT` on stderr once it accepts.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const addon = require('./build/Release/c_handshake.node');

/** Tunnels the relay can hold (as src/proxy/tunnel/native-tunnels.ts NATIVE_SLOTS). */
const SLOTS = 65_536;
/** Numbers per relay report (native-tunnels.ts REPORT_STRIDE). */
const REPORT_STRIDE = 11;
/** The benchmark's proxy_read_timeout for tunnels. */
const IDLE_MS = 3_600_000;
/** $proxy_host of `proxy_pass http://echo`: the Host the upstream gets. */
const UPSTREAM_HOST = 'echo';

function parseArgs(argv) {
  const o = { backends: [], route: 'js', listen: '127.0.0.1:0' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--backend') o.backends.push(v), i++;
    else if (argv[i] === '--route') o.route = v, i++;
    else if (argv[i] === '--listen') o.listen = v, i++;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (o.backends.length === 0) throw new Error('--backend HOST:PORT is required');
  if (o.route !== 'js' && o.route !== 'c') throw new Error('--route is js or c');
  return o;
}

function ipv4(host) {
  const p = host.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new Error(`${host}: an IPv4 address is needed`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

function hostPort(s) {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

const opts = parseArgs(process.argv.slice(2));
const backends = opts.backends.map(hostPort).map((b) => ({ ...b, addr: ipv4(b.host), name: `${b.host}:${b.port}` }));

/** What the access log would need of each open tunnel, by relay slot (the route variant only). */
const open = new Array(SLOTS);
let ended = 0;
let rr = 0;
const choice = new Int32Array(2);

/**
 * Once per handshake, on the JavaScript thread: the balancer's pick (round robin, as Sluice's
 * default) into `choice`, the record the access log needs, and the upstream head as Sluice's
 * proxy_pass with the benchmark's WebSocket lines builds it (Host: $proxy_host; Upgrade and
 * Connection from proxy_set_header; the client's other headers passed on).
 */
function route(slot, path, host, key, version, protocol, extensions, other) {
  const b = backends[rr];
  rr = rr + 1 === backends.length ? 0 : rr + 1;
  choice[0] = b.addr;
  choice[1] = b.port;
  open[slot] = { start: Date.now(), host, path, upstream: b.name };
  return `GET ${path} HTTP/1.1\r\nHost: ${UPSTREAM_HOST}\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: ${version}\r\n${
    protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`}${extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`}${other}\r\n`;
}

/** The relay's reports, in batches: each ended tunnel's record is taken (where the access log line would be written) and its slot freed. */
function onReports(flat) {
  const slots = [];
  for (let i = 0; i < flat.length; i += REPORT_STRIDE) {
    if (flat[i + 7] !== 0) continue; // a guardrail's report: none are set here
    const slot = flat[i];
    open[slot] = undefined;
    ended++;
    slots.push(slot);
  }
  addon.release(slots);
}

addon.init(onReports, new Float64Array(SLOTS * 2), 16 * 1024);
const listen = hostPort(opts.listen);
const port = addon.start({
  route: opts.route === 'js' ? route : null,
  choice,
  backends: backends.flatMap((b) => [b.addr, b.port]),
  upstreamHost: UPSTREAM_HOST,
  idleMs: IDLE_MS,
  host: listen.host,
  port: listen.port,
});
// The route variant's thread-safe function keeps the event loop alive; the C variant has none.
setInterval(() => {}, 1 << 30);
process.on('SIGUSR2', () => {
  process.stderr.write(`c-handshake: ${JSON.stringify({ ...addon.handshakeStats(), ended, relay: addon.stats() })}\n`);
});
process.stderr.write(`c-handshake (route in ${opts.route === 'js' ? 'JavaScript' : 'C'}) listening on ${listen.host}:${port}\n`);
