/** Accept-Encoding, msie6 and gzip_proxied as nginx 1.22 judges them (ngx_http_gzip_ok), and HTTP dates as it reads them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressionDefaults } from '../../config/directives/gzip.js';
import type { CompressionSettings, GzipProxiedFlag } from '../../config/types.js';
import { parseHttpDate } from '../answer/http-date.js';
import { testContext } from '../context/fixtures.js';
import type { RequestContext } from '../context/request-context.js';
import { acceptsBrotli, acceptsGzip, brotliOk, gzipOk, isMsie6 } from './negotiation.js';

function ctx(headers: Record<string, string>, httpVersion = '1.1', rawHeaders?: string[]): RequestContext {
  return testContext(headers, { httpVersion, ...(rawHeaders === undefined ? {} : { rawHeaders }) });
}

const settings = (over: Partial<CompressionSettings> = {}): CompressionSettings => ({ ...compressionDefaults(), gzip: true, ...over });
const proxied = (...flags: GzipProxiedFlag[]): Partial<CompressionSettings> => ({ gzipProxied: new Set(flags) });

test('acceptsGzip: ngx_http_gzip_accept_encoding, case by case', () => {
  const cases: [string, boolean][] = [
    ['gzip', true], ['gzip, deflate, br', true], ['deflate, gzip', true], ['deflate,gzip', true], ['GZip', true],
    ['gzip;q=1', true], ['gzip; q=1.0', true], ['gzip;q=0.001', true], ['gzip;q=0.5, br', true], ['gzip;', true],
    ['gzip;q=0', false], ['gzip; q=0.000', false], ['gzip;q=1.5', false], ['gzip;q=0.0001', false], ['gzip;q=', false],
    ['gzip;level=1', false], ['identity, gzip ;q=0', false], ['x-gzip', false], ['gzipx', false],
    // Only the first "gzip" that starts a token counts, even when a later one would do.
    ['gzipx, gzip', false], ['deflate', false], ['br', false], ['*', false], ['', false],
  ];
  for (const [ae, want] of cases) assert.equal(acceptsGzip(ae), want, JSON.stringify(ae));
});

test('acceptsBrotli: the br token, refused with q=0', () => {
  const cases: [string, boolean][] = [
    ['br', true], ['gzip, deflate, br', true], ['br;q=0.5', true], ['BR', true], ['gzip,br;q=1,zstd', true],
    ['br;q=0', false], ['br; q=0.000', false], ['brotli', false], ['abr', false], ['gzip', false], ['', false],
  ];
  for (const [ae, want] of cases) assert.equal(acceptsBrotli(ae), want, JSON.stringify(ae));
});

test('isMsie6: MSIE 4 to 6 (not 6 with SV1), never Opera', () => {
  assert.equal(isMsie6('Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)'), true);
  assert.equal(isMsie6('Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)'), true);
  assert.equal(isMsie6('Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)'), false);
  assert.equal(isMsie6('Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)'), false);
  assert.equal(isMsie6('Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.1)'), false);
  assert.equal(isMsie6('MSIE 6.'), false);
  assert.equal(isMsie6('curl/8.0'), false);
});

test('gzipOk: Accept-Encoding, gzip_http_version, msie6 and gzip_disable', () => {
  assert.equal(gzipOk(ctx({ 'accept-encoding': 'gzip' }), settings(), []), true);
  assert.equal(gzipOk(ctx({}), settings(), []), false);
  assert.equal(gzipOk(ctx({ 'accept-encoding': 'gzip' }, '1.0'), settings(), []), false, 'gzip_http_version 1.1 by default');
  assert.equal(gzipOk(ctx({ 'accept-encoding': 'gzip' }, '1.0'), settings({ gzipHttpVersion: '1.0' }), []), true);
  assert.equal(gzipOk(ctx({ 'accept-encoding': 'gzip' }, '2.0'), settings(), []), true);
  const ie6 = { 'accept-encoding': 'gzip', 'user-agent': 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)' };
  assert.equal(gzipOk(ctx(ie6), settings(), []), true);
  assert.equal(gzipOk(ctx(ie6), settings({ gzipDisableMsie6: true }), []), false);
  const bot = { 'accept-encoding': 'gzip', 'user-agent': 'SomeBOT/1.0' };
  assert.equal(gzipOk(ctx(bot), settings({ gzipDisable: [/bot/i] }), []), false);
  assert.equal(gzipOk(ctx({ 'accept-encoding': 'gzip' }), settings({ gzipDisable: [/bot/i] }), []), true, 'no User-Agent, no regex to match');
  // nginx 1.22 keeps the first Accept-Encoding line and ignores a repeated one.
  const twoLines = ctx({ 'accept-encoding': 'deflate, gzip' }, '1.1', ['Accept-Encoding', 'deflate', 'Accept-Encoding', 'gzip']);
  assert.equal(gzipOk(twoLines, settings(), []), false);
});

test('gzipOk: the answer is kept in ctx.gzipOk (nginx\'s r->gzip_ok), and asked afresh each time', () => {
  const c = ctx({ 'accept-encoding': 'gzip', via: '1.1 cdn' });
  assert.equal(gzipOk(c, settings(proxied('no_etag')), []), true);
  assert.equal(c.gzipOk, true);
  assert.equal(gzipOk(c, settings(proxied('no_etag')), ['ETag', '"x"']), false);
  assert.equal(c.gzipOk, false);
});

test('gzipOk: gzip_proxied judges a request with Via on the response headers', () => {
  const now = Date.UTC(2024, 0, 10);
  const via = { 'accept-encoding': 'gzip', via: '1.1 cdn' };
  const ok = (s: Partial<CompressionSettings>, headers: string[], request: Record<string, string> = via): boolean => gzipOk(ctx(request), settings(s), headers, now);
  assert.equal(ok({}, []), false, 'gzip_proxied off by default');
  assert.equal(ok(proxied('any'), ['Cache-Control', 'public']), true);
  assert.equal(ok(proxied('off', 'any'), []), false, 'off wins');
  assert.equal(ok(proxied('auth'), [], { ...via, authorization: 'Bearer x' }), true);
  assert.equal(ok(proxied('auth'), ['Cache-Control', 'public']), false);
  // Expires decides alone when present: `expired` needs it in the past, by the proxy's clock.
  assert.equal(ok(proxied('expired'), ['Expires', 'Tue, 09 Jan 2024 00:00:00 GMT']), true);
  assert.equal(ok(proxied('expired'), ['Expires', 'Thu, 11 Jan 2024 00:00:00 GMT']), false);
  assert.equal(ok(proxied('expired'), ['Expires', '0']), false, 'an invalid date is no expiry');
  assert.equal(ok(proxied('no-cache'), ['Expires', 'Tue, 09 Jan 2024 00:00:00 GMT', 'Cache-Control', 'no-cache']), false);
  // Then Cache-Control: one of the listed directives, without a value.
  assert.equal(ok(proxied('no-cache'), ['Cache-Control', 'private, no-cache']), true);
  assert.equal(ok(proxied('no-store'), ['Cache-Control', 'max-age=0', 'Cache-Control', 'no-store']), true);
  assert.equal(ok(proxied('private'), ['Cache-Control', 'private="Set-Cookie"']), false);
  assert.equal(ok(proxied('no-cache', 'no-store', 'private'), ['Cache-Control', 'max-age=60']), false);
  // Without Expires and Cache-Control every flag but off lets it through, unless the
  // no_last_modified / no_etag tests fail (nginx's fall-through to "ok").
  assert.equal(ok(proxied('expired'), []), true);
  assert.equal(ok(proxied('no_last_modified'), ['Last-Modified', 'Tue, 09 Jan 2024 00:00:00 GMT']), false);
  assert.equal(ok(proxied('no_etag'), ['ETag', '"v1"']), false);
  assert.equal(ok(proxied('no_etag'), ['Last-Modified', 'Tue, 09 Jan 2024 00:00:00 GMT']), true);
  assert.equal(gzipOk(ctx({ 'accept-encoding': 'gzip' }), settings(proxied('off')), [], now), true, 'no Via: gzip_proxied is not asked');
});

test('brotliOk: only Accept-Encoding counts (ngx_brotli ignores gzip_proxied, gzip_disable, gzip_http_version)', () => {
  assert.equal(brotliOk(ctx({ 'accept-encoding': 'gzip, br', via: '1.1 cdn' }, '1.0')), true);
  assert.equal(brotliOk(ctx({ 'accept-encoding': 'gzip' })), false);
});

test('parseHttpDate: the three HTTP date forms, strictly (ngx_parse_http_time)', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37);
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
  assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
  assert.equal(parseHttpDate('Thursday, 01-Jan-37 00:00:00 GMT'), Date.UTC(2037, 0, 1), 'two-digit years below 70 are 20xx');
  for (const bad of ['0', '-1', '', 'Sun, 6 Nov 1994 08:49:37 GMT', 'Sun, 30 Feb 2023 00:00:00 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', '2024-01-01T00:00:00Z']) {
    assert.equal(parseHttpDate(bad), null, JSON.stringify(bad));
  }
});
