/**
 * Limit zones summed over worker processes (nginx's shared memory; here the primary keeps every
 * zone and the workers ask it): with `worker_processes 2`, tunnels spread over both workers are
 * still refused at the zone's total, a closed tunnel frees its place whichever worker held it, a
 * worker that dies gives back what it held, and limit_req counts every worker's requests in one
 * bucket. Real child processes of the CLI; round-robin scheduling spreads connections.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { CHILD_MS, CliProcess } from '../helpers/cli-process.js';
import { headerValue, rawRequest, rawWebSocket } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

interface Tunnel {
  readonly status: number;
  readonly pid: string;
  readonly socket: Socket;
}

async function tunnel(port: number): Promise<Tunnel> {
  const ws = await rawWebSocket(port, { path: '/ws' });
  return { status: ws.head.statusCode, pid: headerValue(ws.head, 'x-pid') ?? '', socket: ws.socket };
}

test('worker_processes 2: limit_conn counts tunnels on every worker in one zone; closing or a dying worker frees places', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
events {}
http {
  limit_conn_zone $binary_remote_addr zone=perip:1m;
  limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
  server {
    listen 127.0.0.1:0;
    add_header X-Pid $pid always;
    location /ws { limit_conn perip 4; proxy_pass http://${backend.addr}; }
    location /req { limit_req zone=one burst=1 nodelay; proxy_pass http://${backend.addr}; }
  }
}
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const started = await proxy.output('stderr', /listening on 127\.0\.0\.1:(\d+) \(pid \d+\)$/m);
  const port = Number(started[1]);
  const open: Tunnel[] = [];
  t.after(() => { for (const o of open) o.socket.destroy(); });

  const tries: Tunnel[] = [];
  for (let i = 0; i < 10; i++) {
    const x = await tunnel(port);
    tries.push(x);
    if (x.status === 101) open.push(x);
    else x.socket.destroy();
  }
  const accepted = tries.filter((x) => x.status === 101);
  const refused = tries.filter((x) => x.status === 503);
  assert.equal(accepted.length, 4, `statuses: ${tries.map((x) => `${x.status}@${x.pid}`).join(' ')}`);
  assert.equal(refused.length, 6);
  // Both workers opened tunnels and both refuse: each alone would have let four through. (The
  // tunnels spread by the workers' loads; a refused connection closes at once, so which worker
  // refuses is their race: more tries until both did.)
  assert.equal(new Set(accepted.map((x) => x.pid)).size, 2, 'tunnels on both workers');
  const refusers = new Set(refused.map((x) => x.pid));
  await waitFor(async () => {
    if (refusers.size === 2) return true;
    const x = await tunnel(port);
    x.socket.destroy();
    assert.equal(x.status, 503, 'the zone is full at four');
    refusers.add(x.pid);
    return refusers.size === 2;
  }, { timeoutMs: CHILD_MS, what: 'refusals on both workers' });

  // A closed tunnel frees its place for a connection that may land on the other worker.
  open.shift()!.socket.destroy();
  await waitFor(async () => {
    const x = await tunnel(port);
    if (x.status === 101) open.push(x);
    else x.socket.destroy();
    return x.status === 101;
  }, { timeoutMs: CHILD_MS, what: 'a tunnel after one closed' });

  // A worker killed with its tunnels: the primary gives back what it held.
  const victim = open[0]!.pid;
  const held = open.filter((x) => x.pid === victim).length;
  assert.ok(held > 0);
  process.kill(Number(victim), 'SIGKILL');
  const more: Tunnel[] = [];
  await waitFor(async () => {
    const x = await tunnel(port);
    if (x.status === 101) {
      open.push(x);
      more.push(x);
    } else x.socket.destroy();
    return more.length === held;
  }, { timeoutMs: CHILD_MS, what: `${held} tunnels in place of the killed worker's` });
  const extra = await tunnel(port);
  extra.socket.destroy();
  assert.equal(extra.status, 503, 'the zone is full again at four');

  // limit_req: one bucket for every worker (burst=1 nodelay: two pass, then every worker refuses,
  // the one started in place of the killed one included).
  const req = async (): Promise<{ status: number; pid: string }> => {
    const r = await rawRequest(port, 'GET /req HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    return { status: r.head!.statusCode, pid: headerValue(r.head!, 'x-pid') ?? '' };
  };
  assert.equal((await req()).status, 200);
  assert.equal((await req()).status, 200);
  const refusedBy = new Set<string>();
  const statuses: number[] = [];
  await waitFor(async () => {
    const r = await req();
    statuses.push(r.status);
    if (r.status === 503) refusedBy.add(r.pid);
    return refusedBy.size === 2;
  }, { timeoutMs: CHILD_MS, what: 'both workers to refuse' });
  assert.deepEqual([...new Set(statuses)], [503], 'every request after the burst is refused');
});
