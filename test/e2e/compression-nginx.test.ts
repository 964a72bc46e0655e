/**
 * Compression, Sluice beside the installed nginx: the same http {} block in front of the same
 * upstream, and a table of requests sent to both. For each, the two answers must agree on the
 * status, whether and how the body is compressed, and every header the gzip filter touches
 * (Content-Encoding, Content-Length, Transfer-Encoding, Vary, ETag, Accept-Ranges, Connection);
 * the bodies must decompress to the same bytes. HTTP/1.1, HTTP/1.0 and HTTP/2.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startNginx } from '../helpers/nginx.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { headerValues, rawRequest } from '../helpers/raw-client.js';

const WAIT_MS = 10_000;
const PAGE = Buffer.from(`<!doctype html>${'<p>the same page, compressed by both</p>\n'.repeat(60)}`);

/** The upstream: HTML by default; the query changes one thing (see the table). */
function upstream(req: IncomingMessage, res: ServerResponse): void {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const body = q.has('len') ? PAGE.subarray(0, Number(q.get('len'))) : PAGE;
  const headers: string[] = [];
  if (q.get('type') !== '') headers.push('Content-Type', q.get('type') ?? 'text/html');
  if (!q.has('chunked')) headers.push('Content-Length', String(body.length));
  headers.push('ETag', q.get('etag') ?? '"v1"', 'Accept-Ranges', 'bytes');
  if (q.has('ce')) headers.push('Content-Encoding', q.get('ce')!);
  for (const h of q.getAll('h')) headers.push(h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1));
  res.writeHead(Number(q.get('status') ?? 200), headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The http {} body both run; `listen` is the only difference. */
function httpBlock(listen: string, upstreamAddr: string, files: string, tls = ''): string {
  return `
  gzip on;
  gzip_vary on;
  gzip_types text/css text/plain;
  gzip_disable msie6 "^curl/";
  server {
    listen ${listen};
    ${tls}
    location / { proxy_pass http://${upstreamAddr}; }
    location /any/ { gzip_types *; proxy_pass http://${upstreamAddr}/; }
    location /v10/ { gzip_http_version 1.0; proxy_pass http://${upstreamAddr}/; }
    location /min/ { gzip_min_length 500; proxy_pass http://${upstreamAddr}/; }
    location /proxied/ { gzip_proxied expired no-cache no_etag auth; proxy_pass http://${upstreamAddr}/; }
    location /anyproxy/ { gzip_proxied any; proxy_pass http://${upstreamAddr}/; }
    location /novary/ { gzip_vary off; proxy_pass http://${upstreamAddr}/; }
    location /text { default_type text/plain; return 200 "${'text the proxy answers itself '.repeat(4)}"; }
    location /tiny { default_type text/plain; return 200 "tiny"; }
    location /moved { return 301 /page; }
    location /static/ { types { text/css css; } root ${files}; gzip_static on; }
  }`;
}

const CSS = Buffer.from('body { color: red; }\n'.repeat(100));

/** The static files both serve: s.css (compressed on the fly) and p.css with p.css.gz beside it. */
function staticFiles(t: Parameters<typeof tempDir>[0]): string {
  const dir = tempDir(t);
  // nginx's workers run as nobody when it is started as root: they must reach the files.
  chmodSync(dir.path, 0o755);
  dir.write('static/s.css', CSS);
  dir.write('static/p.css', CSS);
  dir.write('static/p.css.gz', gzipSync(CSS));
  return dir.path;
}

/** What must agree between nginx and Sluice for one request. */
interface Observed {
  readonly status: number;
  readonly headers: Record<string, string | undefined>;
  /** The body after undoing Content-Encoding, with the error pages' signature line normalised. */
  readonly body: string;
}

const COMPARED = ['content-type', 'content-encoding', 'content-length', 'transfer-encoding', 'vary', 'etag', 'accept-ranges', 'connection'];

function observe(status: number, get: (name: string) => string | undefined, raw: Buffer): Observed {
  const headers: Record<string, string | undefined> = {};
  for (const name of COMPARED) headers[name] = get(name);
  const decoded = get('content-encoding') === 'gzip' && raw.length > 0 ? gunzipSync(raw) : raw;
  // Each signs its own pages ("nginx/1.22.1", "sluice"), and an uncompressed page's length with it.
  const signed = decoded.toString('latin1');
  const body = signed.replace(/<hr><center>[^<]*<\/center>/, '<hr><center>SERVER</center>');
  if (body !== signed && headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
  return { status, headers, body };
}

/** [method, target, request header lines, HTTP version, what it checks] */
type Row = readonly [string, string, readonly string[], string, string];

const AE = 'Accept-Encoding: gzip, deflate';
const VIA = 'Via: 1.1 cache';
const ROWS: readonly Row[] = [
  ['GET', '/page', [AE], '1.1', 'text/html is always compressed'],
  ['GET', '/page', [], '1.1', 'no Accept-Encoding: as sent, with Vary'],
  ['HEAD', '/page', [AE], '1.1', 'HEAD: the compressed head, no body'],
  ['GET', '/page?type=text/css', [AE], '1.1', 'a listed type'],
  ['GET', '/page?type=application/json', [AE], '1.1', 'an unlisted type: no Vary either'],
  ['GET', '/page?type=Text/HTML;%20charset=utf-8', [AE], '1.1', 'a charset parameter is cut'],
  ['GET', '/page?type=text/html;%20q=1', [AE], '1.1', 'another parameter is not'],
  ['GET', '/page?type=', [AE], '1.1', 'no Content-Type'],
  ['GET', '/any/page?type=', [AE], '1.1', 'gzip_types * without a Content-Type'],
  ['GET', '/any/page?type=image/png', [AE], '1.1', 'gzip_types *'],
  ['GET', '/page?status=404', [AE], '1.1', 'an upstream 404'],
  ['GET', '/page?status=403', [AE], '1.1', 'an upstream 403'],
  ['GET', '/page?status=206', [AE], '1.1', 'a 206 never'],
  ['GET', '/page?status=500', [AE], '1.1', 'a 500 never'],
  ['GET', '/page?status=201', [AE], '1.1', 'a 201 never'],
  ['GET', '/page?ce=br', [AE], '1.1', 'already encoded'],
  ['GET', '/page?len=19', [AE], '1.1', 'below gzip_min_length 20'],
  ['GET', '/page?len=20', [AE], '1.1', 'at gzip_min_length'],
  ['GET', '/min/page?len=499', [AE], '1.1', 'below gzip_min_length 500'],
  ['GET', '/min/page?len=10&chunked', [AE], '1.1', 'no Content-Length: gzip_min_length cannot apply'],
  ['GET', '/page?etag=W/%22w%22', [AE], '1.1', 'a weak ETag stays'],
  ['GET', '/page?etag=v1', [AE], '1.1', 'an unquoted ETag goes'],
  ['GET', '/page?h=Vary:Cookie', [AE], '1.1', 'the upstream\'s Vary stays beside nginx\'s'],
  ['GET', '/novary/page', [AE], '1.1', 'gzip_vary off'],
  ['GET', '/page', ['Accept-Encoding: gzip;q=0'], '1.1', 'q=0 refuses'],
  ['GET', '/page', ['Accept-Encoding: gzip;q=0.001'], '1.1', 'a small q accepts'],
  ['GET', '/page', ['Accept-Encoding: GZIP'], '1.1', 'any case'],
  ['GET', '/page', ['Accept-Encoding: x-gzip'], '1.1', 'x-gzip is not gzip'],
  ['GET', '/page', ['Accept-Encoding: gzipx, gzip'], '1.1', 'only the first gzip counts'],
  ['GET', '/page', ['Accept-Encoding: deflate', 'Accept-Encoding: gzip'], '1.1', 'a second Accept-Encoding line is ignored (nginx 1.22)'],
  ['GET', '/page', ['Accept-Encoding: br'], '1.1', 'br only'],
  ['GET', '/page', [AE], '1.0', 'HTTP/1.0 with gzip_http_version 1.1'],
  ['GET', '/v10/page', [AE], '1.0', 'HTTP/1.0 with gzip_http_version 1.0: the close ends the body'],
  ['GET', '/page', [AE, 'User-Agent: curl/8.5.0'], '1.1', 'gzip_disable regex'],
  ['GET', '/page', [AE, 'User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)'], '1.1', 'gzip_disable msie6'],
  ['GET', '/page', [AE, 'User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)'], '1.1', 'MSIE 6 SV1 is not msie6'],
  ['GET', '/page', [AE, VIA], '1.1', 'Via with gzip_proxied off'],
  ['GET', '/anyproxy/page', [AE, VIA], '1.1', 'gzip_proxied any'],
  ['GET', '/proxied/page', [AE, VIA], '1.1', 'no_etag: the page has an ETag'],
  ['GET', '/proxied/page', [AE, VIA, 'Authorization: Bearer x'], '1.1', 'auth'],
  ['GET', '/proxied/page?h=Cache-Control:no-cache', [AE, VIA], '1.1', 'no-cache'],
  ['GET', '/proxied/page?h=Cache-Control:max-age=60', [AE, VIA], '1.1', 'Cache-Control without a listed directive'],
  ['GET', '/proxied/page?h=Expires:Thu,%2001%20Jan%201970%2000:00:00%20GMT', [AE, VIA], '1.1', 'expired'],
  ['GET', '/proxied/page?h=Expires:Fri,%2001%20Jan%202100%2000:00:00%20GMT', [AE, VIA], '1.1', 'not expired'],
  ['GET', '/proxied/page?h=Expires:0', [AE, VIA], '1.1', 'an invalid Expires'],
  ['GET', '/nowhere-at-all', [AE], '1.1', 'the proxy\'s own 404 page'],
  ['HEAD', '/nowhere-at-all', [AE], '1.1', 'the proxy\'s own 404 page, HEAD'],
  ['GET', '/text', [AE], '1.1', '`return 200` text of a listed type'],
  ['GET', '/tiny', [AE], '1.1', '`return 200` below gzip_min_length'],
  ['GET', '/moved', [AE], '1.1', 'a redirect never'],
  ['GET', '/static/s.css', [AE], '1.1', 'a static file of a listed type'],
  ['GET', '/static/s.css', [], '1.1', 'a static file, no Accept-Encoding'],
  ['HEAD', '/static/s.css', [AE], '1.1', 'a static file, HEAD'],
  ['GET', '/static/s.css', [AE, 'Range: bytes=0-9'], '1.1', 'a Range on a compressed static file: the whole 200'],
  ['GET', '/static/s.css', ['Range: bytes=0-9'], '1.1', 'a Range on a static file sent as it is: 206'],
  ['GET', '/static/p.css', [AE], '1.1', 'gzip_static: the .gz file'],
  ['GET', '/static/p.css', [AE, 'Range: bytes=0-9'], '1.1', 'gzip_static ignores Range'],
  ['HEAD', '/static/p.css', [AE], '1.1', 'gzip_static, HEAD'],
  ['GET', '/static/p.css', [], '1.1', 'gzip_static, no Accept-Encoding'],
];

async function h1(port: number, [method, target, lines, version]: Row): Promise<Observed> {
  const head = `${method} ${target} HTTP/${version}\r\nHost: localhost\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`;
  const res = await rawRequest(port, head, { until: 'close', timeoutMs: WAIT_MS });
  assert.ok(res.head, `an answer to ${method} ${target}`);
  const h = res.head;
  return observe(h.statusCode, (name) => {
    const v = headerValues(h, name);
    return v.length === 0 ? undefined : v.join(' | ');
  }, res.body);
}

test('gzip: Sluice answers a table of requests as nginx 1.22 does (HTTP/1.x)', async (t) => {
  const backend = await startHttpBackend(upstream);
  t.after(() => backend.close());
  const files = staticFiles(t);
  const nginx = await startNginx(t, (port) => httpBlock(`127.0.0.1:${port}`, backend.addr, files));
  const sluice = await startTestProxy(`events {}\nhttp {${httpBlock('127.0.0.1:0', backend.addr, files)}\n}`, { t });
  const differences: string[] = [];
  let compressed = 0;
  for (const row of ROWS) {
    const want = await h1(nginx.port, row);
    const got = await h1(sluice.port, row);
    if (want.headers['content-encoding'] === 'gzip') compressed++;
    try {
      assert.deepEqual(got, want);
    } catch {
      differences.push(`${row[0]} ${row[1]} ${JSON.stringify(row[2])} HTTP/${row[3]} (${row[4]}):\n  nginx  ${JSON.stringify({ ...want, body: want.body.length })}\n  sluice ${JSON.stringify({ ...got, body: got.body.length })}${got.body === want.body ? '' : '\n  bodies differ'}`);
    }
  }
  assert.deepEqual(differences, [], `${differences.length} of ${ROWS.length} requests answered differently:\n${differences.join('\n')}`);
  // The table is worth something only if both sides of each question are in it.
  assert.ok(compressed > 10 && compressed < ROWS.length - 10, `${compressed} of ${ROWS.length} compressed`);
});

test('gzip over HTTP/2: Sluice answers as nginx 1.22 does', async (t) => {
  const backend = await startHttpBackend(upstream);
  t.after(() => backend.close());
  const certs = await testCerts();
  const tls = `ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`;
  const files = staticFiles(t);
  const nginx = await startNginx(t, (port) => httpBlock(`127.0.0.1:${port} ssl http2`, backend.addr, files, tls));
  const sluice = await startTestProxy(`events {}\nhttp {${httpBlock('127.0.0.1:0 ssl http2', backend.addr, files, tls)}\n}`, { t });
  const clients = await Promise.all([nginx.port, sluice.port].map((port) => h2Connect(port, { ca: certs.ca.cert, timeoutMs: WAIT_MS })));
  t.after(() => clients.forEach((c) => c.close()));
  const rows: [string, string, Record<string, string>][] = [
    ['GET', '/page', { 'accept-encoding': 'gzip' }],
    ['GET', '/page', {}],
    ['HEAD', '/page', { 'accept-encoding': 'gzip' }],
    ['GET', '/page?status=404&len=30&chunked', { 'accept-encoding': 'gzip' }],
    ['GET', '/page?type=application/json', { 'accept-encoding': 'gzip' }],
    ['GET', '/nowhere-at-all', { 'accept-encoding': 'gzip' }],
    ['GET', '/page', { 'accept-encoding': 'gzip', 'user-agent': 'curl/8.5.0' }],
    ['GET', '/static/s.css', { 'accept-encoding': 'gzip', range: 'bytes=0-9' }],
    ['GET', '/static/s.css', { range: 'bytes=0-9' }],
    ['GET', '/static/p.css', { 'accept-encoding': 'gzip' }],
  ];
  for (const [method, path, headers] of rows) {
    const [want, got] = await Promise.all(clients.map(async (c) => {
      const r = await h2Request(c, { ':method': method, ':path': path, ...headers }, undefined, WAIT_MS);
      const all: IncomingHttpHeaders = r.headers;
      return observe(r.status, (name) => {
        const v = all[name];
        return Array.isArray(v) ? v.join(' | ') : v;
      }, r.body);
    }));
    assert.deepEqual(got, want, `${method} ${path} ${JSON.stringify(headers)}`);
  }
});
