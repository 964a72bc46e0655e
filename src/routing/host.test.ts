import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeHost, requestHost, targetAuthority } from './host.js';

test('normalizeHost follows ngx_http_validate_host', () => {
  const cases: [string, string | null][] = [
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com.:8080', 'example.com'],
    ['[::1]:8080', '[::1]'],
    ['[::1]', '[::1]'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['.example.com', '.example.com'],
    ['', null],
    ['.', null],
    [':8080', null],
    ['a..b', null],
    ['a/b', null],
    ['a b', null],
    ['a\0b', null],
    ['a\tb', null],
  ];
  for (const [raw, want] of cases) assert.equal(normalizeHost(raw), want, JSON.stringify(raw));
});

test('an absolute-form target names the host before the Host header (RFC 9112 3.2.2)', () => {
  assert.equal(targetAuthority('/p'), null);
  assert.equal(targetAuthority('http://A.test:81/p?q'), 'A.test:81');
  assert.equal(targetAuthority('http://a.test?q'), 'a.test');
  assert.equal(requestHost('http://A.test:81/p', 'b.test'), 'a.test');
  assert.equal(requestHost('/p', 'B.test'), 'b.test');
  assert.equal(requestHost('/p', undefined), '');
  assert.equal(requestHost('/p', 'bad/host'), null);
});
