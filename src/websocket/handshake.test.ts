import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptKey } from './accept-key.js';
import {
  checkClientHandshake, checkServerHandshake, hasToken, headerTokens, serverHandshakeResponse,
} from './handshake.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const good = {
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': KEY,
  'sec-websocket-version': '13',
};

test('hasToken matches whole list elements case-insensitively across lines', () => {
  assert.equal(hasToken('keep-alive, Upgrade', 'upgrade'), true);
  assert.equal(hasToken(['keep-alive', ' UPGRADE '], 'upgrade'), true);
  assert.equal(hasToken('not-upgrade', 'upgrade'), false);
  assert.equal(hasToken('upgrade-insecure', 'upgrade'), false);
  assert.equal(hasToken(undefined, 'upgrade'), false);
  assert.deepEqual(headerTokens(['a, ,b', 'c']), ['a', 'b', 'c']);
});

test('checkClientHandshake accepts a valid request and lists offers in order', () => {
  const result = checkClientHandshake('GET', {
    ...good,
    connection: 'keep-alive, Upgrade',
    upgrade: 'WebSocket',
    'sec-websocket-protocol': ['chat, superchat', 'v2'],
    'sec-websocket-extensions': 'permessage-deflate',
  });
  assert.deepEqual(result, {
    ok: true, key: KEY, protocols: ['chat', 'superchat', 'v2'], extensions: ['permessage-deflate'],
  });
});

test('checkClientHandshake refuses what RFC 6455 section 4.2.1 requires it to', () => {
  const refusals: [string | undefined, Record<string, string | string[]>][] = [
    ['POST', good],
    ['GET', { ...good, upgrade: 'h2c' }],
    ['GET', { ...good, connection: 'not-upgrade' }],
    ['GET', { ...good, 'sec-websocket-key': 'short' }],
    ['GET', { ...good, 'sec-websocket-key': [KEY, KEY] }],
    ['GET', { ...good, 'sec-websocket-version': '8' }],
  ];
  for (const [method, headers] of refusals) {
    const result = checkClientHandshake(method, headers);
    assert.equal(result.ok, false, JSON.stringify(headers));
    assert.equal(!result.ok && result.statusCode, 400);
  }
  const { 'sec-websocket-key': _omitted, ...noKey } = good;
  assert.equal(checkClientHandshake('GET', noKey).ok, false);
  const version = checkClientHandshake('GET', { ...good, 'sec-websocket-version': '8' });
  assert.deepEqual(!version.ok && version.headers, [['Sec-WebSocket-Version', '13']]);
});

test('serverHandshakeResponse builds the exact 101 text', () => {
  assert.equal(
    serverHandshakeResponse(KEY, { protocol: 'chat', extraHeaders: [['X-Echo-Id', 'a']] }),
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\nX-Echo-Id: a\r\n\r\n',
  );
});

test('checkServerHandshake validates a 101 as a client must', () => {
  const ok = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': acceptKey(KEY) };
  assert.deepEqual(checkServerHandshake(KEY, 101, ok), { ok: true, protocol: null });
  assert.deepEqual(checkServerHandshake(KEY, 101, { ...ok, 'sec-websocket-protocol': 'b' }, ['a', 'b']), { ok: true, protocol: 'b' });
  assert.equal(checkServerHandshake(KEY, 200, ok).ok, false);
  assert.equal(checkServerHandshake(KEY, 101, { ...ok, 'sec-websocket-accept': acceptKey('other') }).ok, false);
  assert.equal(checkServerHandshake(KEY, 101, { upgrade: 'websocket', connection: 'Upgrade' }).ok, false);
  assert.equal(checkServerHandshake(KEY, 101, { ...ok, 'sec-websocket-protocol': 'c' }, ['a']).ok, false);
  assert.equal(checkServerHandshake(KEY, 101, { ...ok, 'sec-websocket-extensions': 'permessage-deflate' }).ok, false);
  assert.equal(checkServerHandshake(KEY, 101, { ...ok, upgrade: 'h2c' }).ok, false);
});
