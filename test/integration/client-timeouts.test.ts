/**
 * The client side's timeouts, with nginx's meaning (issue 11): proxy_read_timeout stops while the
 * client holds the response back (nginx times a read only while it waits for the upstream).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { startHttpBackend, type BackendAddress } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { parseResponseHead, rawConnect, readToEnd, waitForBytes } from '../helpers/raw-client.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';
import { delay } from '../helpers/wait.js';

/** nginx logs client time-outs at info. */
const conf = (http: string): string => `error_log stderr info;\nevents {}\nhttp {\n${http}\n}`;

const WAIT_MS = 10_000;

/** 32 MiB in 64 KiB writes, with backpressure. */
const BIG = 32 * 1024 * 1024;
function sendBig(_req: IncomingMessage, res: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let left = BIG / chunk.length;
  res.writeHead(200, { 'Content-Length': String(BIG) });
  const write = (): void => {
    while (left > 0) {
      left--;
      if (!res.write(chunk)) {
        res.once('drain', write);
        return;
      }
    }
    res.end();
  };
  write();
}

/** Both upstream clients: Sluice's own for plain TCP, http.request for https. */
const UPSTREAMS: readonly { readonly name: string; start(t: { after(fn: () => unknown): void }): Promise<{ pass: string; backend: BackendAddress }> }[] = [
  {
    name: 'plain upstream (Sluice\'s client)',
    async start(t) {
      const backend = await startHttpBackend(sendBig);
      t.after(() => backend.close());
      return { pass: `http://${backend.addr}`, backend };
    },
  },
  {
    name: 'https upstream (http.request)',
    async start(t) {
      const certs = await testCerts();
      const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key, handler: sendBig });
      t.after(() => backend.close());
      return { pass: `https://${backend.addr}`, backend };
    },
  },
];

async function bigProxy(t: { after(fn: () => unknown): void }, pass: string, extra: string): Promise<TestProxy> {
  return startTestProxy(conf(`
    server { listen 127.0.0.1:0; ${extra} location / { proxy_pass ${pass}; } }`), { t });
}

for (const up of UPSTREAMS) {
  test(`${up.name}: a client that pauses longer than proxy_read_timeout gets the whole response`, async (t) => {
    const { pass } = await up.start(t);
    const proxy = await bigProxy(t, pass, 'proxy_read_timeout 1s;');
    const client = await rawConnect(proxy.port);
    t.after(() => client.destroy());
    client.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await waitForBytes(client, (b) => b.length > 1024 * 1024, WAIT_MS);
    client.pause();
    await delay(3000);
    client.resume();
    const all = await readToEnd(client, 30_000);
    const head = parseResponseHead(all);
    assert.equal(head.statusCode, 200);
    assert.equal(all.length - head.headLength, BIG, 'every byte of the body');
    assert.deepEqual(proxy.errorLines.filter((l) => l.includes('timed out')), []);
  });
}
