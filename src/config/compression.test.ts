/** gzip_* and brotli_* in the config: defaults, nginx's merge rules, nginx 1.22's messages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';
import type { MimeTypes } from './types.js';

const types = (t: MimeTypes): string | string[] => (t === '*' ? '*' : [...t].sort());

test('compression: nginx defaults when nothing is written', async () => {
  const c = await good(http('  server { listen 8080; location / { proxy_pass http://127.0.0.1:9000; } }'));
  const cs = c.http!.servers[0]!.locations[0]!.settings.compression;
  assert.equal(cs.gzip, false);
  assert.deepEqual(types(cs.gzipTypes), ['text/html']);
  assert.equal(cs.gzipMinLength, 20);
  assert.equal(cs.gzipCompLevel, 1);
  assert.deepEqual([...cs.gzipProxied], ['off']);
  assert.equal(cs.gzipVary, false);
  assert.deepEqual(cs.gzipDisable, []);
  assert.equal(cs.gzipDisableMsie6, false);
  assert.equal(cs.gzipHttpVersion, '1.1');
  assert.deepEqual(cs.gzipBuffers, { number: 32, size: 4096 });
  assert.equal(cs.gzipStatic, 'off');
  assert.equal(cs.brotli, false);
  assert.deepEqual(types(cs.brotliTypes), ['text/html']);
  assert.equal(cs.brotliCompLevel, 6);
  assert.equal(cs.brotliMinLength, 20);
  assert.equal(cs.brotliStatic, 'off');
});

test('compression: each directive is inherited on its own; a level with *_types lines keeps only its own list', async () => {
  const c = await good(http(
    '  gzip on;',
    '  gzip_types text/css application/javascript;',
    '  gzip_types APPLICATION/JSON;',
    '  gzip_proxied expired no-cache auth;',
    '  gzip_disable msie6 "^curl/";',
    '  gzip_buffers 16 8k;',
    '  brotli on;',
    '  brotli_types *;',
    '  server {',
    '    listen 8080;',
    '    gzip_comp_level 6;',
    '    gzip_min_length 1k;',
    '    location /a { gzip_types text/plain; gzip_vary on; proxy_pass http://127.0.0.1:9000; }',
    '    location /b { gzip off; gzip_disable "Bot"; gzip_http_version 1.0; gzip_static always; brotli_static on; brotli_comp_level 11; brotli_min_length 256; proxy_pass http://127.0.0.1:9000; }',
    '  }',
  ));
  const server = c.http!.servers[0]!;
  const a = server.locations[0]!.settings.compression;
  const b = server.locations[1]!.settings.compression;
  assert.equal(a.gzip, true);
  assert.deepEqual(types(a.gzipTypes), ['text/html', 'text/plain'], 'a level with its own gzip_types keeps only them (and text/html)');
  assert.deepEqual(types(server.settings.compression.gzipTypes), ['application/javascript', 'application/json', 'text/css', 'text/html'], 'lines of one level add up, lower-cased');
  assert.equal(a.gzipCompLevel, 6);
  assert.equal(a.gzipMinLength, 1024);
  assert.deepEqual([...a.gzipProxied].sort(), ['auth', 'expired', 'no-cache']);
  assert.equal(a.gzipVary, true);
  assert.deepEqual(a.gzipBuffers, { number: 16, size: 8192 });
  assert.equal(a.brotliTypes, '*');
  assert.equal(b.gzip, false);
  assert.equal(b.gzipVary, false, 'gzip_vary set in a sibling is not inherited');
  // nginx (ngx_http_gzip_disable): the level's regexes replace the parent's; msie6 is merged on its own.
  assert.deepEqual(b.gzipDisable.map((r) => r.source), ['Bot']);
  assert.equal(b.gzipDisable[0]!.flags.includes('i'), true, 'gzip_disable regexes are caseless');
  assert.equal(b.gzipDisableMsie6, true);
  assert.equal(a.gzipDisable.length, 1);
  assert.equal(a.gzipDisable[0]!.test('CURL/8.0'), true);
  assert.equal(b.gzipHttpVersion, '1.0');
  assert.equal(b.gzipStatic, 'always');
  assert.equal(b.brotliStatic, 'on');
  assert.equal(b.brotliCompLevel, 11);
  assert.equal(b.brotliMinLength, 256);
  assert.equal(a.gzipStatic, 'off');
});

test('compression: `*` in a types list means any type, whatever else the level says', async () => {
  const c = await good(http('  gzip_types text/css * text/plain;', '  gzip_types text/xml;', '  server { listen 8080; }'));
  assert.equal(c.http!.settings.compression.gzipTypes, '*');
});

test('compression: errors and warnings in nginx 1.22 words', async () => {
  const problems = await bad(http(
    '  gzip maybe;',
    '  gzip_comp_level 0;',
    '  gzip_comp_level x;',
    '  gzip_min_length x;',
    '  gzip_proxied expired foo;',
    '  gzip_http_version 2.0;',
    '  gzip_buffers 0 4k;',
    '  gzip_static maybe;',
    '  gzip_disable "(";',
    '  brotli_comp_level 12;',
    '  server { listen 8080; gzip on; gzip on; }',
  ));
  assert.deepEqual(problems.filter((p) => p.level === undefined).map(show), [
    'invalid value "maybe" in "gzip" directive, it must be "on" or "off" in <inline>:3',
    'value must be between 1 and 9 in <inline>:4',
    '"gzip_comp_level" directive is duplicate in <inline>:5',
    '"gzip_min_length" directive invalid value in <inline>:6',
    'invalid value "foo" in <inline>:7',
    'invalid value "2.0" in <inline>:8',
    '"gzip_buffers" directive invalid value in <inline>:9',
    'invalid value "maybe" in <inline>:10',
    'invalid regular expression "(": Unterminated group in <inline>:11',
    'value must be between 0 and 11 in <inline>:12',
    '"gzip" directive is duplicate in <inline>:13',
  ]);
});

test('compression: duplicate MIME types and gzip_proxied values are warnings, as in nginx', async () => {
  const c = await good(http('  gzip_types text/html text/css TEXT/CSS;', '  gzip_proxied any any;', '  server { listen 8080; }'));
  assert.deepEqual(c.warnings.map(show), [
    'duplicate MIME type "text/html" in <inline>:3',
    'duplicate MIME type "TEXT/CSS" in <inline>:3',
    'duplicate value "any" in <inline>:4',
  ]);
});
