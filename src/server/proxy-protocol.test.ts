import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProxyHeader } from './proxy-protocol.js';

const v2 = (verCmd: number, fam: number, body: Buffer): Buffer => {
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, verCmd, fam, 0, 0]);
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
};

test('PROXY v1: TCP4, TCP6, UNKNOWN; the rest of the bytes stay for HTTP', () => {
  const text = 'PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\nGET / HTTP/1.1\r\n';
  const r = parseProxyHeader(Buffer.from(text));
  assert.deepEqual(r, { kind: 'ok', length: text.indexOf('GET'), info: { addr: '192.0.2.1', port: 51000, serverAddr: '198.51.100.2', serverPort: 443 } });
  const six = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 2\r\n'));
  assert.equal(six.kind === 'ok' && six.info?.addr, '2001:db8::1');
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN whatever\r\nGET')), { kind: 'ok', info: null, length: 24 });
});

test('PROXY v1: a partial header waits for more; broken ones are logged as nginx does', () => {
  assert.deepEqual(parseProxyHeader(Buffer.from('PRO')), { kind: 'more' });
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2')), { kind: 'more' });
  assert.deepEqual(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'broken', log: 'broken header: "GET / HTTP/1.1"' });
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n')).kind, 'broken');
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n')).kind, 'broken');
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 host.example 5.6.7.8 1 2\r\n')).kind, 'broken');
  assert.equal(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)).kind, 'broken', 'no CRLF within 107 bytes');
});

test('PROXY v2: PROXY over INET and INET6, LOCAL and other families keep the connection address, TLVs skipped', () => {
  const inet = Buffer.from([192, 0, 2, 1, 198, 51, 100, 2, 0xc7, 0x38, 0x01, 0xbb]);
  const tlv = Buffer.from([0x04, 0x00, 0x02, 0xaa, 0xbb]);
  const r = parseProxyHeader(Buffer.concat([v2(0x21, 0x11, Buffer.concat([inet, tlv])), Buffer.from('GET')]));
  assert.deepEqual(r, { kind: 'ok', length: 16 + 12 + 5, info: { addr: '192.0.2.1', port: 51000, serverAddr: '198.51.100.2', serverPort: 443 } });
  const a6 = Buffer.alloc(36);
  a6[0] = 0x20; a6[1] = 0x01; a6[2] = 0x0d; a6[3] = 0xb8; a6[15] = 1; a6[31] = 2;
  a6.writeUInt16BE(1234, 32);
  a6.writeUInt16BE(80, 34);
  const six = parseProxyHeader(v2(0x21, 0x21, a6));
  assert.deepEqual(six.kind === 'ok' && six.info, { addr: '2001:db8::1', port: 1234, serverAddr: '::2', serverPort: 80 });
  assert.deepEqual(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0))), { kind: 'ok', info: null, length: 16 }, 'LOCAL');
  assert.deepEqual(parseProxyHeader(v2(0x21, 0x31, Buffer.alloc(216))), { kind: 'ok', info: null, length: 232 }, 'AF_UNIX');
  assert.deepEqual(parseProxyHeader(v2(0x21, 0x12, inet)), { kind: 'ok', info: null, length: 28 }, 'DGRAM');
  assert.deepEqual(parseProxyHeader(v2(0x21, 0x11, inet).subarray(0, 20)), { kind: 'more' });
  assert.equal(parseProxyHeader(v2(0x31, 0x11, inet)).kind, 'broken', 'version 3');
  assert.equal(parseProxyHeader(v2(0x21, 0x11, inet.subarray(0, 8))).kind, 'broken', 'short INET addresses');
  assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b])).kind, 'broken', 'not the signature');
});
