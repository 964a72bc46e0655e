import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CATALOG, ProxyError, toProxyError } from './errors.js';

/** docs/errors.md, from dist/src/core/ back to the repository root. */
const DOC = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

test('docs/errors.md lists exactly the codes of the catalog, with the same status, source and retry class', () => {
  const rows = new Map<string, { status: number; source: string; retry: string }>();
  for (const line of DOC.split('\n')) {
    const m = /^\| ([A-Z_0-9]+) \| (\d{3}) \| (\w+) \| ([\w-]+) \|/.exec(line);
    if (m) rows.set(m[1]!, { status: Number(m[2]), source: m[3]!, retry: m[4]! });
  }
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CATALOG).sort());
  for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
    const row = rows.get(code)!;
    assert.equal(row.status, entry.status, code);
    assert.equal(row.source, entry.source, code);
    assert.equal(row.retry, entry.retry ?? '-', code);
  }
});

test('system errors map to the catalog: refused connect is 502 "error", reset is 502, parser errors are invalid_header', () => {
  const refused = toProxyError(Object.assign(new Error('x'), { code: 'ECONNREFUSED', syscall: 'connect' }));
  assert.equal(refused.code, 'UPSTREAM_CONNECT_FAILED');
  assert.equal(refused.status, 502);
  assert.equal(refused.retry, 'error');
  assert.equal(toProxyError(Object.assign(new Error('x'), { code: 'ECONNRESET' })).code, 'UPSTREAM_RESET');
  assert.equal(toProxyError(Object.assign(new Error('x'), { code: 'HPE_INVALID_CONSTANT' })).retry, 'invalid_header');
  const same = new ProxyError('UPSTREAM_READ_TIMEOUT');
  assert.equal(toProxyError(same), same);
  assert.equal(same.status, 504);
});

test('every catalog code is produced somewhere in the data plane (an unused code is deleted, not kept)', () => {
  // The compiled sources next to this file's folder: dist/src/**.js, tests and the catalog itself left out.
  const srcRoot = new URL('../', import.meta.url);
  const files = (readdirSync(srcRoot, { recursive: true }) as string[]).filter((f) => f.endsWith('.js') && !f.endsWith('.test.js'));
  // The catalog's own definition does not count as producing a code (toProxyError, below it, does).
  const withoutCatalog = (f: string, text: string): string =>
    (f === join('core', 'errors.js') ? text.replace(/ERROR_CATALOG = Object\.freeze\(\{[^]*?\}\);/, '') : text);
  const text = files.map((f) => withoutCatalog(f, readFileSync(new URL(f, srcRoot), 'utf8'))).join('\n');
  const unused = Object.keys(ERROR_CATALOG).filter((code) => !new RegExp(`['.]${code}\\b`).test(text));
  assert.deepEqual(unused, []);
});
