/**
 * The rebalancer's loop over fake tunnels: which tunnels it closes (the oldest of the most loaded
 * servers, WebSocket ones not already closing), the close code, the rate, servers left out, and a
 * fleet's count source: this instance closes its part of the fleet's plan at its share of the rate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config, UpstreamConfig, UpstreamServer } from '../config/types.js';
import { ErrorLog } from '../observability/error-log.js';
import { LogFiles } from '../observability/log-files.js';
import type { ProxyTunnel } from '../proxy/tunnel/tunnel.js';
import { testPeer } from '../upstream/balancers/fixtures.js';
import { PeerStates, UpstreamPool } from '../upstream/pool.js';
import type { TunnelCountSource } from '../upstream/rebalance/tunnel-counts.js';
import { REBALANCE_TICK_MS, RETURN_WAIT_MS, Rebalancer } from './rebalancer.js';

interface FakeTunnel extends ProxyTunnel {
  readonly addr: string;
  readonly serial: number;
  closedWith: number | null;
}

let serial = 0;

function tunnel(addr: string, opts: { websocket?: boolean; upstream?: string; goingAway?: boolean } = {}): FakeTunnel {
  const t = {
    addr,
    serial: serial++,
    closedWith: null as number | null,
    ctx: { websocket: opts.websocket ?? true, proxyPass: { upstream: opts.upstream ?? 'app' }, attempts: [{ addr }] },
    reason: '', isNative: false, refusal: null,
    goingAway: opts.goingAway ?? false,
    goAway(_reason: string, code = 1001) {
      t.closedWith = code;
      t.goingAway = true;
    },
    destroy() {},
  };
  return t as unknown as FakeTunnel;
}

function servers(n: number, extra: (i: number) => Partial<UpstreamServer> = () => ({})): UpstreamServer[] {
  return Array.from({ length: n }, (_, i) => testPeer(8001 + i, extra(i)).server);
}

function pool(list: UpstreamServer[], rebalance = { maxRate: 10, tolerance: 0.2, code: 1012 }): UpstreamPool {
  const config: UpstreamConfig = {
    name: 'app', servers: list, keepalive: 0, keepaliveTimeout: 60_000, keepaliveRequests: 1000, implicit: false,
    method: { name: 'least_conn' }, sticky: null, zone: null, healthChecks: [], resolver: null, resolverTimeout: 30_000,
    rebalance: { ...rebalance, loc: { file: 't', line: 1 } }, loc: { file: 't', line: 1 },
  };
  return new UpstreamPool(config, new PeerStates());
}

/** Tunnels per server, opened in that order (server 1's first). */
function open(counts: readonly number[], opts: Parameters<typeof tunnel>[1] = {}): FakeTunnel[] {
  return counts.flatMap((n, i) => Array.from({ length: n }, () => tunnel(`127.0.0.1:${8001 + i}`, opts)));
}

function rebalancer(tunnels: Set<FakeTunnel>, p: UpstreamPool, counts?: TunnelCountSource): Rebalancer {
  const log = new ErrorLog([], new LogFiles({ stderr: { write() {} } }));
  const source = { config: { http: null, workerProcesses: 1 } as unknown as Config, pools: new Map([['app', p]]), errorLog: () => log };
  return new Rebalancer({ tunnels }, () => source, counts, () => 0.5);
}

function closedPerServer(tunnels: Iterable<FakeTunnel>): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of tunnels) if (t.closedWith !== null) out.set(t.addr, (out.get(t.addr) ?? 0) + 1);
  return out;
}

test('40 tunnels on four servers, a fifth added: two of the oldest go from each, with 1012, within the rate', () => {
  const tunnels = new Set(open([10, 10, 10, 10, 0]));
  const p = pool(servers(5));
  const r = rebalancer(tunnels, p);
  let now = 1000;
  const perTick: number[] = [];
  for (let i = 0; i < 8; i++, now += REBALANCE_TICK_MS) {
    const before = [...tunnels].filter((t) => t.closedWith !== null).length;
    r.tick(now);
    perTick.push([...tunnels].filter((t) => t.closedWith !== null).length - before);
  }
  assert.deepEqual(closedPerServer(tunnels), new Map([['127.0.0.1:8001', 2], ['127.0.0.1:8002', 2], ['127.0.0.1:8003', 2], ['127.0.0.1:8004', 2]]));
  assert.ok(perTick.every((n) => n <= 4), `a few per tick: ${perTick.join(' ')}`);
  for (const t of tunnels) if (t.closedWith !== null) assert.equal(t.closedWith, 1012);
  // The oldest of each server: its first two.
  for (let s = 0; s < 4; s++) {
    const mine = [...tunnels].filter((t) => t.addr === `127.0.0.1:${8001 + s}`);
    assert.deepEqual(mine.map((t) => t.closedWith !== null), [true, true, ...new Array<boolean>(8).fill(false)]);
  }
  // The moved clients are not back yet, but they are expected (on the fifth server, where
  // least_conn will send them): nothing more is closed meanwhile.
  assert.equal(p.rebalance?.state, 'balanced');
  r.tick(now += REBALANCE_TICK_MS);
  assert.equal([...tunnels].filter((t) => t.closedWith !== null).length, 8);
  // They come back on the fifth server: still balanced, nothing more is closed.
  for (const t of [...tunnels]) if (t.closedWith !== null) tunnels.delete(t);
  for (const t of open([0, 0, 0, 0, 8])) tunnels.add(t);
  for (let i = 0; i < 50; i++) r.tick(now += REBALANCE_TICK_MS);
  assert.equal(p.rebalance?.state, 'balanced');
  assert.equal(p.rebalance?.pending, 0);
  assert.equal([...tunnels].filter((t) => t.closedWith !== null).length, 0);
});

test('clients slow to come back are waited for; those that never do stop counting after RETURN_WAIT_MS', () => {
  const tunnels = new Set(open([10, 10, 0]));
  const p = pool(servers(3));
  const r = rebalancer(tunnels, p);
  let now = 0;
  for (; now < RETURN_WAIT_MS - 1000; now += REBALANCE_TICK_MS) r.tick(now);
  // Share 6.67: three from each of the first two, and no more while their clients are away.
  assert.deepEqual(closedPerServer(tunnels), new Map([['127.0.0.1:8001', 3], ['127.0.0.1:8002', 3]]));
  // They never come back: what is left (7, 7, 0) is balanced anew.
  for (const t of [...tunnels]) if (t.closedWith !== null) tunnels.delete(t);
  for (; now < RETURN_WAIT_MS + 3000; now += REBALANCE_TICK_MS) r.tick(now);
  assert.deepEqual(closedPerServer(tunnels), new Map([['127.0.0.1:8001', 2], ['127.0.0.1:8002', 2]]));
});

test('never more than max_rate in a second: 1/s moves one tunnel per second', () => {
  const tunnels = new Set(open([20, 0]));
  const r = rebalancer(tunnels, pool(servers(2), { maxRate: 1, tolerance: 0.2, code: 4001 }));
  for (let now = 0; now < 3000; now += REBALANCE_TICK_MS) r.tick(now);
  const closed = [...tunnels].filter((t) => t.closedWith !== null);
  assert.ok(closed.length >= 2 && closed.length <= 3, `${closed.length} closes in 3 s`);
  assert.ok(closed.every((t) => t.closedWith === 4001));
});

test('not counted, not closed: other upgrades, tunnels already closing, other upstreams, backup and down servers', () => {
  const tunnels = new Set([
    ...open([4, 0, 0, 0]),
    ...open([10, 0, 0, 0], { websocket: false }),
    ...open([10, 0, 0, 0], { goingAway: true }),
    ...open([10, 0, 0, 0], { upstream: 'other' }),
    ...open([0, 0, 10, 10]),
  ]);
  // Server 3 is a backup and server 4 down: their 20 tunnels stay; servers 1 and 2 hold 4 and 0.
  const p = pool(servers(4, (i) => (i === 2 ? { backup: true } : i === 3 ? { down: true } : {})));
  const r = rebalancer(tunnels, p);
  for (let now = 0; now < 2000; now += REBALANCE_TICK_MS) r.tick(now);
  const closed = [...tunnels].filter((t) => t.closedWith !== null);
  assert.equal(closed.length, 2, 'two of the four on server 1 move to server 2');
  assert.ok(closed.every((t) => t.ctx.websocket && t.ctx.proxyPass?.upstream === 'app' && t.addr === '127.0.0.1:8001'));
});

test('a fleet: fleet-wide counts, this instance closes its part at its share of max_rate', () => {
  // Three instances; the fleet holds 30, 30, 30, 0 (share 22.5: 7.5 over on each of three).
  // This instance holds 10 of each of the first three: a third of the plan, and of the rate.
  const tunnels = new Set(open([10, 10, 10, 0]));
  const seen: Map<string, number>[] = [];
  const fleet: TunnelCountSource = {
    view(upstream, local) {
      assert.equal(upstream, 'app');
      seen.push(new Map(local));
      return { servers: new Map([['127.0.0.1:8001', 30], ['127.0.0.1:8002', 30], ['127.0.0.1:8003', 30], ['127.0.0.1:8004', 0]]), instances: 3 };
    },
  };
  const p = pool(servers(4), { maxRate: 30, tolerance: 0.2, code: 1012 });
  const r = rebalancer(tunnels, p, fleet);
  r.tick(0);
  assert.deepEqual(seen[0], new Map([['127.0.0.1:8001', 10], ['127.0.0.1:8002', 10], ['127.0.0.1:8003', 10], ['127.0.0.1:8004', 0]]), 'the source gets the local counts');
  assert.equal(p.rebalance?.instances, 3);
  assert.equal(p.rebalance?.pending, 22, 'the fleet plan');
  // A third of the fleet's 30/s.
  assert.ok(Math.abs(p.rebalance!.rate - 10) < 1e-9, `rate ${p.rebalance!.rate}`);
  // The counts stay what the fleet says (a fake): over a few seconds this instance closes at most
  // its part each tick and never more than its rate in a second.
  const times: number[] = [];
  for (let now = REBALANCE_TICK_MS; now < 1000; now += REBALANCE_TICK_MS) {
    const before = [...tunnels].filter((t) => t.closedWith !== null).length;
    r.tick(now);
    for (let i = [...tunnels].filter((t) => t.closedWith !== null).length - before; i > 0; i--) times.push(now);
  }
  assert.ok([...tunnels].filter((t) => t.closedWith !== null).length <= 10);
});

test('setCountSource: the fleet code plugs in after start; an upstream without websocket_rebalance is left alone', () => {
  const tunnels = new Set(open([10, 0]));
  const p = pool(servers(2));
  const plain = new UpstreamPool({ ...p.config, rebalance: null }, new PeerStates());
  const log = new ErrorLog([], new LogFiles({ stderr: { write() {} } }));
  const r = new Rebalancer({ tunnels }, () => ({ config: { http: null, workerProcesses: 1 } as unknown as Config, pools: new Map([['app', plain]]), errorLog: () => log }));
  r.tick(0);
  r.tick(1000);
  assert.equal([...tunnels].filter((t) => t.closedWith !== null).length, 0);
  assert.equal(plain.rebalance, null);
  let asked = 0;
  const r2 = rebalancer(tunnels, p);
  r2.setCountSource({ view: (_u, local) => (asked++, { servers: local, instances: 1 }) });
  r2.tick(0);
  assert.equal(asked, 1);
});
