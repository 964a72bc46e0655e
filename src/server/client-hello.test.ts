import assert from 'node:assert/strict';
import { test } from 'node:test';
import { helloIds, helloRecordLength } from './client-hello.js';

/** A ClientHello record with a session id and, optionally, a pre_shared_key extension. */
function hello(sessionId: Buffer, psk: readonly Buffer[] | null): Buffer {
  const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
  const ext: Buffer[] = [Buffer.concat([u16(0), u16(0)])];
  if (psk !== null) {
    const ids = Buffer.concat(psk.map((p) => Buffer.concat([u16(p.length), p, Buffer.alloc(4)])));
    const body = Buffer.concat([u16(ids.length), ids, u16(33), Buffer.alloc(33)]);
    ext.push(Buffer.concat([u16(41), u16(body.length), body]));
  }
  const exts = Buffer.concat(ext);
  const msg = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([sessionId.length]), sessionId,
    u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(exts.length), exts]);
  const hs = Buffer.concat([Buffer.from([1, 0, msg.length >> 8, msg.length & 0xff]), msg]);
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
}

test('a ClientHello gives its legacy session id and PSK identities; a partial or other record gives nothing', () => {
  const sid = Buffer.alloc(32, 7);
  const full = hello(sid, [Buffer.from('ticket-one'), Buffer.from('two')]);
  assert.equal(helloRecordLength(full), full.length);
  const ids = helloIds(full);
  assert.deepEqual(ids?.sessionId, sid);
  assert.deepEqual(ids?.pskIdentities.map((b) => b.toString()), ['ticket-one', 'two']);
  assert.deepEqual(helloIds(hello(sid, null))?.pskIdentities, []);
  assert.equal(helloIds(full.subarray(0, full.length - 1)), null);
  assert.equal(helloIds(Buffer.from('GET / HTTP/1.1\r\n\r\n')), null);
  assert.equal(helloRecordLength(Buffer.from('GET / HTTP/1.1\r\n\r\n')), null);
});
