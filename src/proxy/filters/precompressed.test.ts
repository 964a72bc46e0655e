/** gzip_static and brotli_static on real files, as nginx's static handlers decide. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressionDefaults } from '../../config/directives/gzip.js';
import { defaultSettings } from '../../config/defaults.js';
import type { CompressionSettings, Settings } from '../../config/types.js';
import { testContext } from '../context/fixtures.js';
import type { RequestContext } from '../context/request-context.js';
import { compressionFilter } from './compression.js';
import { findPrecompressed } from './precompressed.js';

function ctx(headers: Record<string, string>, method = 'GET', uri = '/app.js'): RequestContext {
  return testContext(headers, { method, uri });
}

function settings(over: Partial<CompressionSettings>): Settings {
  return { ...defaultSettings([], '/'), compression: { ...compressionDefaults(), ...over } };
}

/** A root with app.js, app.js.gz, app.js.br, page.html (no .gz), a directory dir.gz, and dev.gz -> /dev/null. */
function root(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-precompressed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'app.js'), 'plain');
  writeFileSync(join(dir, 'app.js.gz'), 'gzipped!');
  writeFileSync(join(dir, 'app.js.br'), 'brotli');
  writeFileSync(join(dir, 'page.html'), 'plain');
  writeFileSync(join(dir, 'dir'), 'plain');
  mkdirSync(join(dir, 'dir.gz'));
  writeFileSync(join(dir, 'dev'), 'plain');
  symlinkSync('/dev/null', join(dir, 'dev.gz'));
  return dir;
}

const GZIP = { 'accept-encoding': 'gzip' };

test('gzip_static on: FILE.gz for a client that accepts gzip, with Vary; FILE itself for the others', async (t) => {
  const dir = root(t);
  const s = settings({ gzipStatic: 'on', gzipVary: true });
  const c = ctx(GZIP);
  const found = await findPrecompressed(c, s, join(dir, 'app.js'));
  assert.equal(found.kind, 'file');
  assert.equal(found.kind === 'file' && found.path, join(dir, 'app.js.gz'));
  assert.equal(found.kind === 'file' && found.coding, 'gzip');
  assert.equal(found.kind === 'file' && found.stats.size, 'gzipped!'.length);
  assert.equal(c.gzipVary, true);
  const other = ctx({});
  assert.deepEqual(await findPrecompressed(other, s, join(dir, 'app.js')), { kind: 'none' });
  assert.equal(other.gzipVary, true, 'FILE.gz exists: the answer depends on Accept-Encoding');
  const noGz = ctx({});
  assert.deepEqual(await findPrecompressed(noGz, s, join(dir, 'page.html')), { kind: 'none' });
  assert.equal(noGz.gzipVary, false, 'no FILE.gz: nothing varies');
});

test('gzip_static on without gzip_vary: a client that cannot have gzip costs no look at the disk', async (t) => {
  const dir = root(t);
  const looked: string[] = [];
  const spy = (p: string): Promise<Stats> => {
    looked.push(p);
    return stat(p);
  };
  assert.deepEqual(await findPrecompressed(ctx({}), settings({ gzipStatic: 'on' }), join(dir, 'app.js'), { stat: spy }), { kind: 'none' });
  assert.deepEqual(looked, []);
  assert.equal((await findPrecompressed(ctx(GZIP), settings({ gzipStatic: 'on' }), join(dir, 'app.js'), { stat: spy })).kind, 'file');
  assert.deepEqual(looked, [join(dir, 'app.js.gz')]);
});

test('gzip_static always: FILE.gz for every client, without Vary; off: never', async (t) => {
  const dir = root(t);
  const c = ctx({});
  assert.equal((await findPrecompressed(c, settings({ gzipStatic: 'always', gzipVary: true }), join(dir, 'app.js'))).kind, 'file');
  assert.equal(c.gzipVary, false);
  assert.deepEqual(await findPrecompressed(ctx(GZIP), settings({}), join(dir, 'app.js')), { kind: 'none' });
});

test('gzip_static: only GET and HEAD, never a URI ending in /, never a directory; a FILE.gz that is no file is a 404', async (t) => {
  const dir = root(t);
  const s = settings({ gzipStatic: 'always' });
  assert.equal((await findPrecompressed(ctx(GZIP, 'HEAD'), s, join(dir, 'app.js'))).kind, 'file');
  assert.deepEqual(await findPrecompressed(ctx(GZIP, 'POST'), s, join(dir, 'app.js')), { kind: 'none' });
  assert.deepEqual(await findPrecompressed(ctx(GZIP, 'GET', '/app.js/'), s, join(dir, 'app.js')), { kind: 'none' });
  assert.deepEqual(await findPrecompressed(ctx(GZIP), s, join(dir, 'dir')), { kind: 'none' });
  const logged: string[] = [];
  const found = await findPrecompressed(ctx(GZIP), s, join(dir, 'dev'), { log: (level, message) => logged.push(`${level} ${message}`) });
  assert.deepEqual(found, { kind: 'not-found' });
  assert.deepEqual(logged, [`crit "${join(dir, 'dev.gz')}" is not a regular file`]);
});

test('gzip_static on asks ngx_http_gzip_ok: gzip_proxied and gzip_disable apply, gzip_types does not', async (t) => {
  const dir = root(t);
  const s = settings({ gzipStatic: 'on', gzipDisable: [/bot/i] });
  assert.deepEqual(await findPrecompressed(ctx({ ...GZIP, via: '1.1 cdn' }), s, join(dir, 'app.js')), { kind: 'none' });
  assert.deepEqual(await findPrecompressed(ctx({ ...GZIP, 'user-agent': 'SomeBot' }), s, join(dir, 'app.js')), { kind: 'none' });
  assert.equal((await findPrecompressed(ctx(GZIP), s, join(dir, 'app.js'))).kind, 'file', 'application/javascript is not in gzip_types, and it does not matter');
});

test('brotli_static: FILE.br first for a client that accepts br; FILE.gz when there is none', async (t) => {
  const dir = root(t);
  const s = settings({ gzipStatic: 'on', brotliStatic: 'on' });
  const both = { 'accept-encoding': 'gzip, deflate, br' };
  const br = await findPrecompressed(ctx(both), s, join(dir, 'app.js'));
  assert.equal(br.kind === 'file' && br.coding, 'br');
  assert.equal(br.kind === 'file' && br.path, join(dir, 'app.js.br'));
  const gzOnly = await findPrecompressed(ctx(GZIP), s, join(dir, 'app.js'));
  assert.equal(gzOnly.kind === 'file' && gzOnly.coding, 'gzip');
  writeFileSync(join(dir, 'page.html.gz'), 'gz');
  const fallback = await findPrecompressed(ctx(both), s, join(dir, 'page.html'));
  assert.equal(fallback.kind === 'file' && fallback.coding, 'gzip', 'gzip_static asks ngx_http_gzip_ok afresh after brotli_static');
  assert.equal((await findPrecompressed(ctx({}), settings({ brotliStatic: 'always' }), join(dir, 'app.js'))).kind, 'file');
});

test('the compression filter after gzip_static: Vary for FILE.gz served or not, no second encoding, the first gzip answer kept', async (t) => {
  const dir = root(t);
  const s = settings({ gzip: true, gzipStatic: 'on', gzipVary: true, gzipTypes: '*' });
  const served = ctx(GZIP);
  assert.equal((await findPrecompressed(served, s, join(dir, 'app.js'))).kind, 'file');
  const head = ['Content-Type', 'application/javascript', 'Content-Length', '8', 'Content-Encoding', 'gzip', 'ETag', '"1-8"'];
  assert.equal(compressionFilter(served, s, 200, head), null);
  assert.deepEqual(head, ['Content-Type', 'application/javascript', 'Content-Length', '8', 'Content-Encoding', 'gzip', 'ETag', '"1-8"', 'Vary', 'Accept-Encoding']);
  // gzip_static judged the client with no response headers yet: with gzip_proxied no_etag that
  // is a yes, and nginx's filter keeps it for FILE even though FILE goes out with an ETag.
  const n = settings({ gzip: true, gzipStatic: 'on', gzipProxied: new Set(['no_etag']) });
  const viaCdn = ctx({ ...GZIP, via: '1.1 cdn' }, 'GET', '/page.html');
  assert.deepEqual(await findPrecompressed(viaCdn, n, join(dir, 'page.html')), { kind: 'none' });
  const page = ['Content-Type', 'text/html', 'Content-Length', '50', 'ETag', '"1-32"'];
  assert.notEqual(compressionFilter(viaCdn, n, 200, page), null);
  assert.deepEqual(page, ['Content-Type', 'text/html', 'ETag', 'W/"1-32"', 'Content-Encoding', 'gzip']);
  // Without gzip_static the filter asks itself, and the ETag refuses it.
  const fresh = ctx({ ...GZIP, via: '1.1 cdn' }, 'GET', '/page.html');
  assert.equal(compressionFilter(fresh, n, 200, ['Content-Type', 'text/html', 'Content-Length', '50', 'ETag', '"1-32"']), null);
});
