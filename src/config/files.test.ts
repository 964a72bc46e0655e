/**
 * The static-file directives: what each records, nginx's merge (root/alias and types replace,
 * try_files is not inherited), and nginx's messages for what it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';
import type { Config, LocationConfig } from './types.js';

function location(config: Config, pattern: string): LocationConfig {
  const found = config.http!.servers[0]!.locations.find((l) => l.pattern === pattern);
  assert.ok(found, `location ${pattern}`);
  return found;
}

test('root and alias: relative paths join the prefix, root loses one trailing slash, alias keeps it and knows its location', async () => {
  const c = await good(http(
    '  root www/;',
    '  server {',
    '    location /a/ { alias data/; }',
    '    location ~ ^/img/(.+)$ { alias /srv/img/$1; }',
    '    location = /exact { alias /srv/exact.txt; }',
    '    location /v/ { root $host/site; }',
    '    location /inherits { }',
    '  }',
  ), { prefix: '/etc/sluice' });
  const http0 = c.http!.settings.files.root;
  assert.equal(http0.path.constant, '/etc/sluice/www');
  assert.equal(http0.alias, null);
  const a = location(c, '/a/').settings.files.root;
  assert.equal(a.path.constant, '/etc/sluice/data/');
  assert.equal(a.alias, 3);
  assert.equal(location(c, '^/img/(.+)$').settings.files.root.alias, 'regex');
  assert.equal(location(c, '/exact').settings.files.root.alias, 6);
  const v = location(c, '/v/').settings.files.root;
  assert.equal(v.path.constant, null, 'a root starting with a variable is resolved per request');
  assert.equal(v.prefix, '/etc/sluice');
  assert.equal(location(c, '/inherits').settings.files.root.path.constant, '/etc/sluice/www');
});

test('the default root is "html" in the prefix; index defaults to index.html; nginx\'s other defaults', async () => {
  const c = await good(http('  server { location / { } }'), { prefix: '/opt/site' });
  const f = location(c, '/').settings.files;
  assert.equal(f.root.path.constant, '/opt/site/html');
  assert.deepEqual(f.index.map((v) => v.raw), ['index.html']);
  assert.equal(f.tryFiles, null);
  assert.deepEqual([...f.types], [['html', 'text/html'], ['gif', 'image/gif'], ['jpg', 'image/jpeg']]);
  assert.equal(f.etag, true);
  assert.equal(f.ifModifiedSince, 'exact');
  assert.equal(f.maxRanges, null);
  assert.equal(f.autoindex, false);
  assert.equal(f.autoindexExactSize, true);
  assert.equal(f.autoindexFormat, 'html');
  assert.equal(f.disableSymlinks, 'off');
  assert.equal(f.logNotFound, true);
  assert.equal(f.internal, false);
});

test('inheritance: index lines add up at one level and are inherited; types {} replaces the table; try_files is not inherited', async () => {
  const c = await good(http(
    '  types { text/html html; }',
    '  types { text/css css; }',
    '  server {',
    '    index a.html;',
    '    index b.html $host.html;',
    '    try_files $uri =404;',
    '    location /t/ { types { image/png PNG; } }',
    '    location /n/ { }',
    '  }',
  ));
  const server = c.http!.servers[0]!.settings.files;
  assert.deepEqual(server.index.map((v) => v.raw), ['a.html', 'b.html', '$host.html']);
  assert.deepEqual([...server.types], [['html', 'text/html'], ['css', 'text/css']]);
  assert.notEqual(server.tryFiles, null);
  const t = location(c, '/t/').settings.files;
  assert.deepEqual([...t.types], [['png', 'image/png']]);
  assert.deepEqual(t.index.map((v) => v.raw), ['a.html', 'b.html', '$host.html']);
  assert.equal(location(c, '/n/').settings.files.tryFiles, null);
});

test('try_files: directories by a trailing slash, =CODE, a URI or @name last', async () => {
  const c = await good(http(
    '  server {',
    '    location /a { try_files $uri $uri/ /index.html?$args; }',
    '    location /b { try_files $uri =404; }',
    '    location /c { try_files $uri @app; }',
    '    location @app { return 200; }',
    '  }',
  ));
  const a = location(c, '/a').settings.files.tryFiles!;
  assert.deepEqual(a.tries.map((x) => [x.value.raw, x.dir]), [['$uri', false], ['$uri', true]]);
  assert.equal('uri' in a.fallback && a.fallback.uri.raw, '/index.html?$args');
  assert.deepEqual(location(c, '/b').settings.files.tryFiles!.fallback, { code: 404 });
  const named = location(c, '/c').settings.files.tryFiles!.fallback;
  assert.equal('uri' in named && named.uri.raw, '@app');
});

test('nginx\'s messages for what it refuses', async () => {
  const problems = await bad(http(
    '  server {',
    '    location /a { root /x; alias /y; }',
    '    location /b { alias /x; alias /y; }',
    '    location @n { alias /x; }',
    '    location /c { root $document_root/x; }',
    '    location /d { try_files $uri =4040; }',
    '    location /e { index ""; }',
    '    location /f { disable_symlinks maybe; }',
    '    location /g { disable_symlinks off from=/x; }',
    '    location /h { disable_symlinks from=/x; }',
    '    location /i { open_file_cache inactive=20s; }',
    '    location /j { open_file_cache max=0; }',
    '    location /k { autoindex_format yaml; }',
    '    location /l { if_modified_since later; }',
    '    location /m { aio sometimes; }',
    '    location /n { sendfile yes; }',
    '    location /o { max_ranges -1; }',
    '    alias /z;',
    '  }',
  ));
  assert.deepEqual(problems.map(show), [
    '"alias" directive is duplicate, "root" directive was specified earlier in <inline>:4',
    '"alias" directive is duplicate in <inline>:5',
    'the "alias" directive cannot be used inside the named location in <inline>:6',
    'the $document_root variable cannot be used in the "root" directive in <inline>:7',
    'invalid code "=4040" in <inline>:8',
    'index "" in "index" directive is invalid in <inline>:9',
    'invalid parameter "maybe" in <inline>:10',
    '"from=" cannot be used with "off" parameter in <inline>:11',
    '"disable_symlinks" must have "off", "on" or "if_not_owner" parameter in <inline>:12',
    '"open_file_cache" must have the "max" parameter in <inline>:13',
    'invalid "open_file_cache" parameter "max=0" in <inline>:14',
    'invalid value "yaml" in "autoindex_format" directive, it must be "html", "json", "jsonp" or "xml" in <inline>:15',
    'invalid value "later" in "if_modified_since" directive, it must be "off", "exact" or "before" in <inline>:16',
    '"aio" directive invalid value in <inline>:17',
    'invalid value "yes" in "sendfile" directive, it must be "on" or "off" in <inline>:18',
    '"max_ranges" directive invalid value in <inline>:19',
    '"alias" directive is not allowed here in <inline>:20',
  ]);
});

test('warnings: a duplicate extension (the last type wins) and an absolute index before the last', async () => {
  const c = await good(http(
    '  types { text/plain txt; text/x-other TXT; }',
    '  server { index /first.html last.html; }',
  ));
  assert.deepEqual(c.warnings.map(show), [
    'duplicate extension "TXT", content type: "text/x-other", previous content type: "text/plain" in <inline>:3',
    'only the last index in "index" directive should be absolute in <inline>:4',
  ]);
  assert.equal(c.http!.settings.files.types.get('txt'), 'text/x-other');
});

test('directives accepted for their I/O meaning: sendfile, tcp_nopush, open_file_cache, aio, directio, output_buffers...', async () => {
  await good(http(
    '  sendfile on; sendfile_max_chunk 1m; tcp_nopush on; tcp_nodelay on; types_hash_max_size 2048; types_hash_bucket_size 64;',
    '  open_file_cache max=1000 inactive=20s; open_file_cache_valid 30s; open_file_cache_min_uses 2; open_file_cache_errors on;',
    '  open_file_cache_events on; aio threads; aio_write on; directio 4m; directio_alignment 512; read_ahead 0;',
    '  output_buffers 2 32k; postpone_output 1460;',
    '  server { location / { open_file_cache off; aio threads=default; directio off; disable_symlinks if_not_owner from=$document_root; } }',
  ));
});
