/**
 * `listen ... proxy_protocol`: Sluice behind an L4 balancer (HAProxy, AWS NLB) that puts a PROXY
 * protocol header (v1 text or v2 binary) before the client's bytes. The header's addresses are
 * `$proxy_protocol_*`; with `set_real_ip_from` + `real_ip_header proxy_protocol` they become
 * `$remote_addr` and `$remote_port`, as in nginx. A connection without a valid header is closed
 * and logged ("broken header"), plain and TLS addresses alike, and WebSocket tunnels pass.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { completeResponse, rawConnect, readUntil, waitForClose, wsHandshakeRequest, SAMPLE_ACCEPT } from '../helpers/raw-client.js';
import { once, withTimeout } from '../helpers/wait.js';

const SHOW = '"[$remote_addr][$remote_port][$proxy_protocol_addr][$proxy_protocol_port][$proxy_protocol_server_addr][$proxy_protocol_server_port]"';

function v2(verCmd: number, fam: number, body: Buffer): Buffer {
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, verCmd, fam, 0, 0]);
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}
const V2_INET = v2(0x21, 0x11, Buffer.from([10, 0, 0, 1, 10, 0, 0, 2, 0x11, 0x5c, 0x22, 0xb8]));

/** Sends `parts` (written one by one) and reads the response body, or null when the connection closes without one. */
async function ask(to: { port: number; host: string }, parts: readonly (string | Buffer)[]): Promise<string | null> {
  const s = await rawConnect(to.port, { host: to.host });
  try {
    for (const p of parts) s.write(p);
    const bytes = await readUntil(s, (b) => completeResponse(b) !== null).catch(() => null);
    return bytes === null ? null : completeResponse(bytes)!.body.toString();
  } finally {
    s.destroy();
  }
}

const GET = 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';

test('proxy_protocol: v1 and v2 headers give $proxy_protocol_*; realip takes them for $remote_addr/$remote_port only when asked', async (t) => {
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0 proxy_protocol; return 200 ${SHOW}; }
    server { listen 127.0.0.2:0 proxy_protocol; set_real_ip_from 127.0.0.0/8; real_ip_header proxy_protocol; return 200 ${SHOW}; }
    server { listen 127.0.0.3:0; set_real_ip_from 127.0.0.0/8; return 200 ${SHOW}; }`, 'error_log stderr info;'), { t });
  const [plain, real, header] = proxy.listeners as unknown as [{ port: number; host: string }, { port: number; host: string }, { port: number; host: string }];
  const v1 = 'PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n';
  const own = /^\[127\.0\.0\.\d\]\[\d+\]/;
  const a = await ask(plain, [v1 + GET]);
  assert.match(a!, own, 'without realip, $remote_addr stays the balancer\'s');
  assert.match(a!, /\[192\.0\.2\.1\]\[51000\]\[198\.51\.100\.2\]\[443\]$/);
  assert.equal(await ask(real, [v1 + GET]), '[192.0.2.1][51000][192.0.2.1][51000][198.51.100.2][443]');
  // The header split over several packets, and the request in packets of its own.
  assert.equal(await ask(real, ['PROXY TCP4 192.0.2.', '7 198.51.100.2 1 2\r', '\nGET / HTTP/1.1\r\n', 'Host: a\r\nConnection: close\r\n\r\n']), '[192.0.2.7][1][192.0.2.7][1][198.51.100.2][2]');
  assert.equal(await ask(real, [Buffer.concat([V2_INET, Buffer.from(GET)])]), '[10.0.0.1][4444][10.0.0.1][4444][10.0.0.2][8888]');
  // $remote_addr is the address as nginx prints it; $proxy_protocol_addr the header's text.
  assert.equal(await ask(real, ['PROXY TCP6 2001:DB8:0::1 ::1 5 6\r\n', GET]), '[2001:db8::1][5][2001:DB8:0::1][5][::1][6]');
  // UNKNOWN and v2 LOCAL (the balancer's own health checks): the connection's own address.
  assert.match((await ask(real, ['PROXY UNKNOWN\r\n' + GET]))!, /^\[127\.0\.0\.\d\]\[\d+\]\[\]\[\]\[\]\[\]$/);
  assert.match((await ask(real, [Buffer.concat([v2(0x20, 0x00, Buffer.alloc(0)), Buffer.from(GET)])]))!, /^\[127\.0\.0\.\d\]\[\d+\]\[\]\[\]\[\]\[\]$/);
  // An address realip cannot use (nginx v1 takes any hex, '.' and ':'): kept as $proxy_protocol_addr only.
  assert.match((await ask(real, ['PROXY TCP4 1.2.3 5.6.7.8 1111 2222\r\n' + GET]))!, /^\[127\.0\.0\.\d\]\[\d+\]\[1\.2\.3\]\[1111\]/);
  // X-Real-IP carries no port: nginx's $remote_port is then empty.
  assert.equal(await ask(header, ['GET / HTTP/1.1\r\nHost: a\r\nX-Real-IP: 203.0.113.9\r\nConnection: close\r\n\r\n']), '[203.0.113.9][][][][][]');
});

test('proxy_protocol: a connection without a valid header is closed unanswered, logged as nginx; nothing reaches the upstream', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0 proxy_protocol; location / { proxy_pass http://${backend.addr}; } }`, 'error_log stderr info;'), { t });
  for (const bad of [GET, 'PROXY TCP4 a b c d\r\n' + GET, Buffer.concat([v2(0x31, 0x11, Buffer.alloc(12)), Buffer.from(GET)])]) {
    const s = await rawConnect(proxy.port);
    s.write(bad);
    await waitForClose(s);
    assert.equal(recorderFor(s).all.length, 0, `no answer to ${JSON.stringify(bad.toString('latin1').slice(0, 20))}`);
    s.destroy();
  }
  await proxy.waitForErrorLine(/\[error\] .*broken header: "GET \/ HTTP\/1\.1" while reading PROXY protocol, client: 127\.0\.0\.1, server: 127\.0\.0\.1:\d+/);
  await proxy.waitForErrorLine(/\[error\] .*unknown PROXY protocol version: 3 while reading PROXY protocol/);
  assert.equal(backend.requests.length, 0);
  assert.match((await ask({ port: proxy.port, host: '127.0.0.1' }, ['PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n' + GET]))!, /"url":"\/"/, 'a good header after them is served');
});

test('proxy_protocol on a TLS address: the header comes before the ClientHello; WebSocket tunnels pass on plain and TLS', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    set_real_ip_from 127.0.0.0/8; real_ip_header proxy_protocol;
    server { listen 127.0.0.1:0 ssl proxy_protocol http2; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
      location = /who { return 200 "$remote_addr $scheme"; }
      location / { proxy_pass http://${backend.addr}; proxy_set_header X-Real-IP $remote_addr; } }
    server { listen 127.0.0.2:0 proxy_protocol; location / { proxy_pass http://${backend.addr}; proxy_set_header X-Real-IP $remote_addr; } }`), { t });
  const [tlsPort, plainPort] = proxy.listeners.map((l) => l.port) as [number, number];

  const raw = await rawConnect(tlsPort);
  raw.write('PROXY TCP4 192.0.2.44 198.51.100.2 4000 443\r\n');
  const secure = tlsConnect({ socket: raw, servername: 'localhost', ca: certs.ca.cert });
  recorderFor(secure);
  t.after(() => secure.destroy());
  await withTimeout(once(secure, 'secureConnect'), 5000, 'the TLS handshake after the PROXY header');
  secure.write('GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const who = completeResponse(await readUntil(secure, (b) => completeResponse(b) !== null))!;
  assert.equal(who.body.toString(), '192.0.2.44 https');

  // HTTP/2 on the same address (ALPN h2 after the PROXY header).
  const raw2 = await rawConnect(tlsPort);
  raw2.write('PROXY TCP4 192.0.2.55 198.51.100.2 4001 443\r\n');
  const session = h2connect('https://localhost', { createConnection: () => tlsConnect({ socket: raw2, servername: 'localhost', ca: certs.ca.cert, ALPNProtocols: ['h2'] }) });
  session.on('error', () => undefined);
  t.after(() => session.destroy());
  const stream = session.request({ ':path': '/who' });
  let h2body = '';
  stream.setEncoding('utf8').on('data', (c: string) => void (h2body += c));
  await withTimeout(once(stream, 'end'), 5000, 'the HTTP/2 answer');
  assert.equal(h2body, '192.0.2.55 https');

  // WebSocket over the TLS address, then over the plain one: the upstream sees the real client.
  secure.write(wsHandshakeRequest({ path: '/ws', host: 'localhost' }));
  const tlsHead = (await readUntil(secure, '\r\n\r\n')).toString('latin1');
  assert.match(tlsHead, /^HTTP\/1\.1 101 /);
  assert.ok(tlsHead.includes(SAMPLE_ACCEPT));
  assert.equal(backend.requests.at(-1)?.headers['x-real-ip'], '192.0.2.44');

  const plain = await rawConnect(plainPort, { host: '127.0.0.2' });
  t.after(() => plain.destroy());
  plain.write(Buffer.concat([v2(0x21, 0x11, Buffer.from([203, 0, 113, 5, 10, 0, 0, 2, 0x11, 0x5c, 0x22, 0xb8])), Buffer.from(wsHandshakeRequest({ path: '/ws', host: 'localhost' }))]));
  assert.match((await readUntil(plain, '\r\n\r\n')).toString('latin1'), /^HTTP\/1\.1 101 /);
  assert.equal(backend.requests.at(-1)?.headers['x-real-ip'], '203.0.113.5');
});
