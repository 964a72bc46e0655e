import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeBinary, encodeClose, encodeFrame, encodeFrameHeader, encodePing, encodePong, encodeText, resolveMaskKey,
} from './frame-writer.js';
import { Opcode } from './opcodes.js';

const hex = (b: Buffer): string => b.toString('hex');

test('encodes the examples of RFC 6455 section 5.7', () => {
  assert.equal(hex(encodeText('Hello')), '810548656c6c6f');
  const rfcMask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  assert.equal(hex(encodeText('Hello', rfcMask)), '818537fa213d7f9f4d5158');
  assert.equal(hex(encodeFrame({ fin: false, opcode: Opcode.TEXT, payload: 'Hel' })), '010348656c');
  assert.equal(hex(encodeFrame({ opcode: Opcode.CONTINUATION, payload: 'lo' })), '80026c6f');
  assert.equal(hex(encodePing('Hello')), '890548656c6c6f');
  assert.equal(hex(encodePong('Hello', rfcMask)), '8a8537fa213d7f9f4d5158');
  assert.equal(hex(encodeBinary(Buffer.alloc(256)).subarray(0, 4)), '827e0100');
  assert.equal(hex(encodeBinary(Buffer.alloc(65536)).subarray(0, 10)), '827f0000000000010000');
});

test('uses the shortest length form at each boundary', () => {
  const cases: [number, number][] = [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]];
  for (const [length, headerLength] of cases) {
    const header = encodeFrameHeader({ fin: true, rsv: 0, opcode: 2, payloadLength: length, maskKey: null });
    assert.equal(header.length, headerLength, `length ${length}`);
    const masked = encodeFrameHeader({ fin: true, rsv: 0, opcode: 2, payloadLength: length, maskKey: Buffer.alloc(4) });
    assert.equal(masked.length, headerLength + 4, `masked length ${length}`);
    assert.equal(masked[1]! & 0x80, 0x80);
  }
  const big = encodeFrameHeader({ fin: true, rsv: 0, opcode: 2, payloadLength: 2 ** 32 + 5, maskKey: null });
  assert.equal(hex(big), '827f0000000100000005');
});

test('writes fin and rsv bits as given', () => {
  assert.equal(encodeFrame({ fin: false, rsv: 0b101, opcode: 2 })[0], 0b0101_0010);
  assert.equal(encodeFrame({ rsv: 0b010, opcode: 1 })[0], 0b1010_0001);
});

test('mask: true uses a fresh random key and never changes the caller payload', () => {
  const payload = Buffer.from('same payload');
  const copy = Buffer.from(payload);
  const a = encodeFrame({ opcode: 2, payload, mask: true });
  const b = encodeFrame({ opcode: 2, payload, mask: true });
  assert.deepEqual(payload, copy);
  assert.equal(a[1]! & 0x80, 0x80);
  assert.notDeepEqual(a.subarray(2, 6), b.subarray(2, 6));
  assert.equal(resolveMaskKey(false), null);
  assert.equal(resolveMaskKey(undefined), null);
  assert.throws(() => resolveMaskKey(Buffer.alloc(3)), RangeError);
});

test('encodeClose writes the code and reason, or an empty body without a code', () => {
  assert.equal(hex(encodeClose()), '8800');
  assert.equal(hex(encodeClose(1001, 'bye')), '880503e9627965');
  assert.throws(() => encodeClose(1005), RangeError);
  assert.throws(() => encodeClose(999), RangeError);
  assert.throws(() => encodeClose(5000), RangeError);
});

test('encodeClose cuts a long reason at a character boundary within 125 bytes', () => {
  const frame = encodeClose(1000, 'é'.repeat(100)); // 200 bytes of UTF-8
  assert.equal(frame[1], 2 + 122);
  assert.equal(frame.subarray(4).toString('utf8'), 'é'.repeat(61));
});

test('ping and pong refuse payloads over 125 bytes; encodeFrame encodes anything', () => {
  assert.equal(encodePing(Buffer.alloc(125)).length, 127);
  assert.throws(() => encodePing(Buffer.alloc(126)), RangeError);
  assert.throws(() => encodePong(Buffer.alloc(126)), RangeError);
  const bad = encodeFrame({ fin: false, opcode: Opcode.PING, payload: Buffer.alloc(126) });
  assert.equal(hex(bad.subarray(0, 4)), '097e007e');
  assert.throws(() => encodeFrame({ opcode: 16 }), RangeError);
  assert.throws(() => encodeFrame({ opcode: 1, rsv: 8 }), RangeError);
});
