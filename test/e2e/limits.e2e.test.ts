// nginx (the installed 1.22) and Sluice side by side on limit_req and limit_conn: the same config
// and the same request sequence give the same statuses and the same $limit_req_status /
// $limit_conn_status (burst with nodelay, limit_req_status, dry run, delay=N within its free
// part, WebSocket tunnels under limit_conn with limit_conn_status). Rates are 1r/m so that
// nothing leaks during the test.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValue, rawRequest, rawWebSocket } from '../helpers/raw-client.js';

async function get(port: number, path: string): Promise<string> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
  const title = /<title>([^<]*)<\/title>/.exec(r.body.toString())?.[1] ?? '';
  return `${r.head!.statusCode} ${headerValue(r.head!, 'x-req') ?? '-'} ${headerValue(r.head!, 'x-conn') ?? '-'} ${title}`;
}

test('e2e: limit_req and limit_conn answer as nginx does', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    limit_req_zone $binary_remote_addr zone=burst:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=status:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=delay:1m rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    server { listen 127.0.0.1:${port};
      add_header X-Req $limit_req_status always;
      add_header X-Conn $limit_conn_status always;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      location /nodelay { limit_req zone=burst burst=2 nodelay; proxy_pass http://${backend.addr}; }
      location /status { limit_req zone=status; limit_req_status 429; proxy_pass http://${backend.addr}; }
      location /dry { limit_req zone=dry; limit_req_dry_run on; proxy_pass http://${backend.addr}; }
      location /delay { limit_req zone=delay burst=5 delay=2; proxy_pass http://${backend.addr}; }
      location /ws { limit_conn perip 2; limit_conn_status 429; proxy_pass http://${backend.addr}; }
    }`);
  const sequence = ['/nodelay', '/nodelay', '/nodelay', '/nodelay', '/status', '/status', '/dry', '/dry', '/dry', '/delay', '/delay', '/delay'];
  const seen: Record<string, string[]> = { nginx: [], sluice: [] };
  for (const path of sequence) {
    seen['nginx']!.push(`${path} ${await get(ports.nginx, path)}`);
    seen['sluice']!.push(`${path} ${await get(ports.sluice, path)}`);
  }
  assert.deepEqual(seen['sluice'], seen['nginx']);

  // WebSocket tunnels under limit_conn: two open, the third refused with limit_conn_status.
  const open: Socket[] = [];
  t.after(() => { for (const s of open) s.destroy(); });
  const tunnels: Record<string, string[]> = { nginx: [], sluice: [] };
  for (const [side, port] of [['nginx', ports.nginx], ['sluice', ports.sluice]] as const) {
    for (let i = 0; i < 3; i++) {
      const ws = await rawWebSocket(port, { path: '/ws' });
      open.push(ws.socket);
      tunnels[side]!.push(`${ws.head.statusCode} ${headerValue(ws.head, 'x-conn') ?? '-'}`);
    }
    // A plain request counts too while the tunnels hold the places.
    tunnels[side]!.push(await get(port, '/ws'));
  }
  assert.deepEqual(tunnels['sluice'], tunnels['nginx']);
  assert.deepEqual(tunnels['nginx']!.slice(0, 3), ['101 PASSED', '101 PASSED', '429 REJECTED']);
});
