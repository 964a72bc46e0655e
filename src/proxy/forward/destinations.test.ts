import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAllowRule } from '../../config/directives/forward-proxy.js';
import type { ForwardAllowRule } from '../../config/types.js';
import { addressAllowed, nameAllowed, parseDestination } from './destinations.js';

function rules(...texts: string[]): ForwardAllowRule[] {
  return texts.map((t) => {
    const r = parseAllowRule(t);
    assert.ok(r !== null, t);
    return r;
  });
}

test('allow rules: names, wildcards, networks and ports as written; no port is 80 and 443', () => {
  assert.deepEqual(parseAllowRule('API.example.com')?.ports, [[80, 80], [443, 443]]);
  assert.equal(parseAllowRule('API.example.com')?.name, 'api.example.com');
  assert.deepEqual(parseAllowRule('*.example.com:8000-8999')?.ports, [[8000, 8999]]);
  assert.equal(parseAllowRule('.example.com')?.withBase, true);
  assert.equal(parseAllowRule('10.0.0.0/8:*')?.kind, 'address');
  assert.equal(parseAllowRule('fd00::/8')?.kind, 'address');
  assert.equal(parseAllowRule('[fd00::/8]:443')?.kind, 'address');
  for (const bad of ['', '*', 'a b', 'host:0', 'host:70000', 'host:9-3', '10.0.0.0/40', '[::1', '[::1]x', '1.2.3', '*.', 'a..b', '-a.com']) {
    assert.equal(parseAllowRule(bad), null, bad);
  }
});

test('destinations: CONNECT needs a port; names lower-cased; IP literals known as such', () => {
  assert.equal(parseDestination('example.com', null), null);
  assert.deepEqual(parseDestination('Example.COM:443', null), { host: 'example.com', port: 443, literal: false });
  assert.deepEqual(parseDestination('[::1]:8080', null), { host: '::1', port: 8080, literal: true });
  assert.deepEqual(parseDestination('10.1.2.3', 80), { host: '10.1.2.3', port: 80, literal: true });
  assert.equal(parseDestination('a@b:1', null), null);
  assert.equal(parseDestination('h:0', null), null);
});

test('name rules match the name asked for; wildcards only subdomains unless written .domain', () => {
  const r = rules('api.example.com:443', '*.apps.test', '.both.test');
  const at = (host: string, port = 443): boolean => nameAllowed(r, parseDestination(`${host}:${port}`, null)!);
  assert.equal(at('api.example.com'), true);
  assert.equal(at('api.example.com', 80), false);
  assert.equal(at('x.api.example.com'), false);
  assert.equal(at('a.b.apps.test'), true);
  assert.equal(at('apps.test'), false);
  assert.equal(at('both.test'), true);
  assert.equal(at('x.both.test'), true);
  assert.equal(at('evilapps.test'), false);
});

test('resolved addresses: special ranges need an address rule as narrow as the range; public ones a name or address rule', () => {
  const dest = parseDestination('app.test:443', null)!;
  const byName = rules('app.test:443');
  assert.equal(addressAllowed(byName, dest, '93.184.216.34'), true);
  for (const internal of ['127.0.0.1', '10.0.0.5', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1', '::1', '::', 'fd12::1', 'fe80::1', '::ffff:127.0.0.1', '64:ff9b::a00:1', '224.0.0.1', '255.255.255.255']) {
    assert.equal(addressAllowed(byName, dest, internal), false, internal);
  }
  const wide = rules('0.0.0.0/0:*', '[::/0]:*');
  assert.equal(addressAllowed(wide, dest, '127.0.0.1'), false);
  assert.equal(addressAllowed(wide, dest, '::1'), false);
  assert.equal(addressAllowed(wide, dest, '8.8.8.8'), true);
  assert.equal(addressAllowed(rules('127.0.0.0/8:443'), dest, '127.0.0.2'), true);
  assert.equal(addressAllowed(rules('127.0.0.1:443'), dest, '::ffff:127.0.0.1'), true);
  assert.equal(addressAllowed(rules('127.0.0.1:8443'), dest, '127.0.0.1'), false);
  assert.equal(addressAllowed(rules('10.0.0.0/8'), dest, '10.9.9.9'), true);
  assert.equal(addressAllowed(rules('10.0.0.0/7'), dest, '10.9.9.9'), false);
  assert.equal(addressAllowed(rules('[::1]:443'), dest, '::1'), true);
});
