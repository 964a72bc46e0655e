import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { acceptKey, isValidKey, newKey, WEBSOCKET_GUID } from './accept-key.js';

test('acceptKey matches the example in RFC 6455 section 1.3', () => {
  assert.equal(WEBSOCKET_GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('acceptKey hashes a key as the bytes that came (latin1), also one no client should send', () => {
  for (const key of ['x', '\u00e9\u00ff key \u0080', 'dGhlIHNhbXBsZSBub25jZQ== ']) {
    assert.equal(acceptKey(key), createHash('sha1').update(Buffer.from(key + WEBSOCKET_GUID, 'latin1')).digest('base64'), JSON.stringify(key));
  }
});

test('newKey makes distinct base64 encodings of 16 bytes', () => {
  const keys = new Set(Array.from({ length: 50 }, () => newKey()));
  assert.equal(keys.size, 50);
  for (const key of keys) {
    assert.ok(isValidKey(key), key);
    assert.equal(Buffer.from(key, 'base64').length, 16);
  }
});

test('isValidKey rejects keys that are not 16 bytes of base64', () => {
  assert.equal(isValidKey('dGhlIHNhbXBsZSBub25jZQ=='), true);
  assert.equal(isValidKey(''), false);
  assert.equal(isValidKey('dGhlIHNhbXBsZSBub25jZQ'), false);
  assert.equal(isValidKey('dGhlIHNhbXBsZSBub25jZQ== '), false);
  assert.equal(isValidKey(Buffer.alloc(17).toString('base64')), false);
  assert.equal(isValidKey('!!!!!!!!!!!!!!!!!!!!!!=='), false);
});
