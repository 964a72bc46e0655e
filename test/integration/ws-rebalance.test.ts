/**
 * websocket_rebalance (issue 17, item 5): 40 clients that reconnect when closed, spread by least_conn
 * over 4 echo backends; a reload adds a fifth. The tunnels opened under the first configuration are
 * counted with the new one's (a server is its upstream's name and address), the most loaded servers
 * close some with 1012 at a frame boundary, never more than max_rate a second, and the clients land
 * on the fifth server until each holds its share within the tolerance. Against the native relay, the
 * TypeScript relay and HTTP/2 (RFC 8441) tunnels.
 */
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import type { ClientHttp2Stream } from 'node:http2';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { startEchoServer } from '../../src/echo/echo-server.js';
import type { EchoServer } from '../../src/echo/echo-server.js';
import { events } from '../../src/observability/events.js';
import { renderPrometheus } from '../../src/observability/metrics.js';
import { FrameParser } from '../../src/websocket/frame-parser.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2WebSocket, type H2Client } from '../helpers/h2-client.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { startTestProxy } from '../helpers/proxy.js';
import { maskedFrame } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { maxInWindow, tally, withinTolerance } from '../helpers/rebalance.js';
import { waitFor } from '../helpers/wait.js';
import { IMPLEMENTATIONS, adopted, type Implementation } from './tunnel-impl-support.js';

const CLIENTS = 40;
const MAX_RATE = 3;
const TOLERANCE = 0.2;
/** Bounded waits: generous, for a loaded 2-core machine. */
const OPEN_MS = 20_000;
const BALANCE_MS = 30_000;

/** One open session: the backend that greeted it, and its close code once closed. */
interface Session {
  readonly id: string;
  readonly closed: Promise<number>;
  close(): void;
}

type Dial = () => Promise<Session>;

/** HTTP/1.1: the ws library, which answers the close handshake as a browser does. */
function wsDial(port: number): Dial {
  return () => new Promise<Session>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/whoami`);
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('error', reject);
    // The greeting comes with the 101: listen before 'open'.
    ws.once('message', (data) => resolve({ id: (JSON.parse(data.toString()) as { id: string }).id, closed, close: () => ws.terminate() }));
  });
}

/** HTTP/2: an extended CONNECT stream per session, frames read and the close answered by hand. */
function h2Dial(client: H2Client): Dial {
  return async () => {
    const { stream, headers } = await h2WebSocket(client, '/whoami', {}, OPEN_MS);
    assert.equal(headers[':status'], 200);
    return new Promise<Session>((resolve, reject) => {
      const parser = new FrameParser();
      let greeted = false;
      let resolveClosed!: (code: number) => void;
      const closed = new Promise<number>((r) => (resolveClosed = r));
      stream.on('data', (chunk: Buffer) => {
        parser.push(chunk);
        for (let f = parser.next(); f !== null; f = parser.next()) {
          if (f.kind !== 'frame') return reject(new Error(`protocol error: ${JSON.stringify(f)}`));
          if (f.opcode === Opcode.TEXT && !greeted) {
            greeted = true;
            resolve({ id: (JSON.parse(f.payload.toString()) as { id: string }).id, closed, close: () => stream.close() });
          } else if (f.opcode === Opcode.CLOSE) {
            (stream as ClientHttp2Stream).end(maskedFrame(Opcode.CLOSE, f.payload.subarray(0, 2)));
            resolveClosed(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005);
          }
        }
      });
      stream.on('close', () => resolveClosed(1006));
      stream.on('error', () => resolveClosed(1006));
    });
  };
}

/** A client that reconnects at once whenever its session is closed, as a WebSocket app does on 1012. */
class Client {
  backend = '';
  readonly codes: number[] = [];
  reconnects = 0;
  #session: Session | null = null;
  #stopped = false;
  readonly #dial: Dial;
  readonly #closeTimes: number[];

  constructor(dial: Dial, closeTimes: number[]) {
    this.#dial = dial;
    this.#closeTimes = closeTimes;
  }

  async run(): Promise<void> {
    while (!this.#stopped) {
      const s = await this.#dial();
      this.#session = s;
      this.backend = s.id;
      if (this.codes.length > 0) this.reconnects++;
      const code = await s.closed;
      if (this.#stopped) return;
      this.backend = '';
      this.codes.push(code);
      this.#closeTimes.push(performance.now());
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#session?.close();
  }
}

function config(impl: string, backends: readonly EchoServer[], log: string): string {
  return `error_log stderr notice;
events {}
http {
  log_format ws '$upstream_addr $websocket_close_code';
  access_log ${log} ws;
  upstream app {
    least_conn;
    websocket_rebalance max_rate=${MAX_RATE}/s tolerance=${TOLERANCE * 100}%;
    ${backends.map((b) => `server 127.0.0.1:${b.port};`).join('\n    ')}
  }
  server {
    ${impl}
    location / { proxy_pass http://app; proxy_read_timeout 120s; }
  }
}`;
}




async function startBackends(t: TestContext, ids: readonly string[]): Promise<EchoServer[]> {
  const backends = await Promise.all(ids.map((id) => startEchoServer({ id })));
  t.after(() => Promise.all(backends.map((b) => b.close())));
  return backends;
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl.name}: a fifth server added by reload gets its share through websocket_rebalance, 1012 to each closed client, within max_rate`, async (t) => {
    const ids = ['A', 'B', 'C', 'D', 'E'];
    const backends = await startBackends(t, ids);
    const log = tempDir(t).join('access.log');
    const server = await impl.server();
    const proxy = await startTestProxy(config(server, backends.slice(0, 4), log), { t });
    // Closes as the proxy made them (exact times), and as the clients saw them.
    const sent: number[] = [];
    const onRebalance = (m: unknown): void => {
      const msg = m as { upstream: string; code: number };
      assert.equal(msg.code, 1012);
      sent.push(performance.now());
    };
    events.upstreamRebalance.subscribe(onRebalance);
    t.after(() => events.upstreamRebalance.unsubscribe(onRebalance));
    const seen: number[] = [];
    let dial: Dial;
    if (impl.status === 200) {
      const h2 = await h2Connect(proxy.port, { ca: (await testCerts()).ca.cert, timeoutMs: OPEN_MS });
      t.after(() => h2.close());
      dial = h2Dial(h2);
    } else {
      dial = wsDial(proxy.port);
    }
    const before = adopted();
    const clients = Array.from({ length: CLIENTS }, () => new Client(dial, seen));
    const running = clients.map((c) => c.run());
    t.after(() => {
      for (const c of clients) c.stop();
    });
    // least_conn spreads the 40 evenly over the four.
    await waitFor(() => clients.every((c) => c.backend !== ''), { timeoutMs: OPEN_MS, what: 'every client connected' });
    assert.deepEqual(tally(clients, ids), [10, 10, 10, 10, 0]);
    if (impl.native) await waitFor(() => adopted() - before >= CLIENTS, { timeoutMs: OPEN_MS, what: 'the addon to hold the tunnels' });
    // Balanced: nothing is closed while the four hold their share.
    assert.equal(sent.length, 0);

    await proxy.handle.reload({ text: config(server, backends, log) });
    await waitFor(() => {
      const counts = tally(clients, ids);
      return counts.reduce((a, b) => a + b, 0) === CLIENTS && withinTolerance(counts, TOLERANCE) && counts[4]! > 0 ? counts : null;
    }, { timeoutMs: BALANCE_MS, what: 'the five servers to hold their share within the tolerance' });
    const counts = tally(clients, ids);
    assert.ok(counts[4]! >= 7, `the fifth server has its share (8, within the tolerance): ${counts.join(' ')}`);
    // Every close was a 1012 from the proxy, and every closed client came back through it.
    const codes = clients.flatMap((c) => c.codes);
    assert.ok(codes.length >= 7, `at least the fifth server's share was moved: ${codes.length}`);
    assert.deepEqual([...new Set(codes)], [1012], 'each closed client got 1012 (Service Restart)');
    assert.ok(codes.length <= 16, `no churn beyond what balancing needs: ${codes.length} closes`);
    for (const c of clients) if (c.codes.length > 0) await waitFor(() => c.reconnects === c.codes.length && c.backend !== '', { timeoutMs: OPEN_MS, what: 'a closed client back' });
    // Never more than max_rate in any second (the proxy's own times); what the clients saw may
    // bunch up on a loaded machine, so their bound is generous.
    assert.equal(sent.length, codes.length);
    assert.ok(maxInWindow(sent, 1000) <= MAX_RATE, `at most ${MAX_RATE} closes in any second: ${maxInWindow(sent, 1000)}`);
    assert.ok(maxInWindow(seen, 1000) <= 2 * MAX_RATE);

    // The access log says who closed each moved tunnel and how; the metrics count them per server.
    await waitFor(() => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.endsWith(' 1012/sluice')).length === codes.length || null : null),
      { timeoutMs: OPEN_MS, what: 'an access-log line "1012/sluice" per moved tunnel' });
    const snap = proxy.handle.stats.snapshot();
    const families = parsePrometheus(renderPrometheus(snap));
    const closedPerServer = backends.slice(0, 4).map((b) => sampleValue(families, 'sluice_upstream_rebalance_closes_total', { upstream: 'app', server: `127.0.0.1:${b.port}` }) ?? 0);
    assert.equal(closedPerServer.reduce((a, b) => a + b, 0), codes.length);
    assert.equal(sampleValue(families, 'sluice_upstream_rebalance_closes_total', { upstream: 'app', server: `127.0.0.1:${backends[4]!.port}` }), 0);
    await waitFor(() => proxy.handle.stats.snapshot().upstreams.app?.rebalance?.rebalancing === 0 || null, { timeoutMs: OPEN_MS, what: 'the status to say balanced' });
    assert.equal(snap.upstreams.app?.rebalance?.code, 1012);
    await proxy.waitForErrorLine(/\[notice\] .*rebalancing upstream "app": \d+ tunnel\(s\) to move/);
    await proxy.waitForErrorLine(/\[notice\] .*upstream "app" is balanced again \(websocket_rebalance\)/);

    for (const c of clients) c.stop();
    await Promise.all(running);
  });
}

test('websocket_rebalance closes nothing while the servers hold their share, and with nothing to balance to', async (t) => {
  const backends = await startBackends(t, ['A', 'B']);
  const impl: Implementation = IMPLEMENTATIONS.find((i) => !i.native && i.status === 101)!;
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(config(await impl.server(), backends, log), { t });
  let sent = 0;
  const onRebalance = (): void => void sent++;
  events.upstreamRebalance.subscribe(onRebalance);
  t.after(() => events.upstreamRebalance.unsubscribe(onRebalance));
  const clients = Array.from({ length: 6 }, () => new Client(wsDial(proxy.port), []));
  const running = clients.map((c) => c.run());
  await waitFor(() => clients.every((c) => c.backend !== ''), { timeoutMs: OPEN_MS, what: 'every client connected' });
  assert.deepEqual(tally(clients, ['A', 'B']), [3, 3]);
  // A reload that marks B down: its tunnels are no one's to move (down servers are left out), and A alone has nowhere to send them.
  await proxy.handle.reload({ text: config(await impl.server(), backends, log).replace(`${backends[1]!.port};`, `${backends[1]!.port} down;`) });
  const until = proxy.handle.stats.snapshot().time;
  await waitFor(() => proxy.handle.stats.snapshot().time >= until + 1000 || null, { timeoutMs: OPEN_MS, what: 'a second of ticks' });
  assert.equal(sent, 0);
  assert.equal(proxy.handle.stats.snapshot().upstreams.app?.rebalance?.rebalancing, 0);
  for (const c of clients) c.stop();
  await Promise.all(running);
});
