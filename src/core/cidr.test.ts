import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrMatch, formatIp, inNetwork, parseCidr, parseIp, parseIPv6, unmapIPv4 } from './cidr.js';

test('IPv4 and IPv6 text forms as nginx reads them', () => {
  assert.deepEqual(parseIp('10.1.2.3'), { family: 4, bytes: [10, 1, 2, 3] });
  assert.deepEqual(parseIPv6('::1'), [...new Array(15).fill(0), 1]);
  assert.deepEqual(parseIPv6('2001:db8::ff00:42:8329'), [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29]);
  assert.deepEqual(parseIPv6('::ffff:192.0.2.1')?.slice(10), [0xff, 0xff, 192, 0, 2, 1]);
  assert.deepEqual(parseIPv6('1:2:3:4:5:6:7:8')?.slice(14), [0, 8]);
  assert.deepEqual(parseIPv6('::'), new Array(16).fill(0));
  for (const bad of ['1.2.3', '1.2.3.256', '1.2.3.4.5', 'a.b.c.d', 'localhost', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7',
    '12345::', 'fe80::1%eth0', '::1.2.3', '', '1:2:3:4:5:6:7::8']) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test('CIDR: prefix, mask, low bits masked off, family limits', () => {
  const net = parseCidr('10.1.2.3/8');
  assert.deepEqual(net, { family: 4, addr: [10, 0, 0, 0], mask: [255, 0, 0, 0], lowBits: true });
  assert.equal(parseCidr('192.168.1.0/24')?.lowBits, false);
  assert.deepEqual(parseCidr('192.168.1.128/25')?.mask, [255, 255, 255, 128]);
  assert.deepEqual(parseCidr('1.2.3.4')?.mask, [255, 255, 255, 255]);
  assert.deepEqual(parseCidr('0.0.0.0/0')?.mask, [0, 0, 0, 0]);
  assert.deepEqual(parseCidr('2001:db8::/32')?.addr.slice(0, 5), [0x20, 0x01, 0x0d, 0xb8, 0]);
  assert.equal(parseCidr('1.2.3.4/33'), null);
  assert.equal(parseCidr('::/129'), null);
  assert.equal(parseCidr('1.2.3.4/'), null);
  assert.equal(parseCidr('1.2.3.4/x'), null);
  const v6 = parseCidr('2001:db8::/32')!;
  assert.equal(inNetwork(parseIp('2001:db8:1::5')!.bytes, v6.addr, v6.mask), true);
  assert.equal(inNetwork(parseIp('2001:db9::5')!.bytes, v6.addr, v6.mask), false);
  assert.equal(inNetwork(parseIp('10.0.0.1')!.bytes, v6.addr, v6.mask), false, 'families never match');
  assert.deepEqual(unmapIPv4(parseIp('::ffff:127.0.0.1')!.bytes), [127, 0, 0, 1]);
  assert.equal(unmapIPv4(parseIp('::1')!.bytes), null);
});

test('cidrMatch: ngx_cidr_match, an IPv4-mapped IPv6 address is matched as IPv4', () => {
  const nets = [parseCidr('10.0.0.0/8')!, parseCidr('2001:db8::/32')!];
  assert.equal(cidrMatch(nets, '10.1.2.3'), true);
  assert.equal(cidrMatch(nets, '::ffff:10.1.2.3'), true);
  assert.equal(cidrMatch(nets, '::ffff:11.1.2.3'), false);
  assert.equal(cidrMatch(nets, '2001:db8::1'), true);
  assert.equal(cidrMatch(nets, '2001:db9::1'), false);
  assert.equal(cidrMatch(nets, 'nonsense'), false);
});

test('formatIp prints addresses as nginx does (ngx_inet6_ntop)', () => {
  const f = (t: string): string => formatIp(parseIp(t)!);
  assert.equal(f('2001:Db8::1'), '2001:db8::1');
  assert.equal(f('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(f('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed');
  assert.equal(f('::'), '::');
  assert.equal(f('::1'), '::1');
  assert.equal(f('::FFFF:10.0.0.1'), '::ffff:10.0.0.1');
  assert.equal(f('192.0.2.1'), '192.0.2.1');
});
