import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TAG, children, encode, encodeOid, integerBits, oidText, readDer } from './der.js';

test('DER: encode and read back, long lengths, OIDs and integer sizes', () => {
  const long = Buffer.alloc(300, 1);
  const seq = encode(TAG.SEQUENCE, [encode(TAG.INTEGER, Buffer.from([0x00, 0x80])), encode(TAG.OCTET_STRING, long), encodeOid('1.3.6.1.5.5.7.48.1.1')]);
  const [int, octets, oid] = children(readDer(seq));
  assert.equal(integerBits(int!.content), 8);
  assert.equal(octets!.content.length, 300);
  assert.equal(oidText(oid!.content), '1.3.6.1.5.5.7.48.1.1');
  assert.throws(() => readDer(seq.subarray(0, 10)), /truncated/);
});
