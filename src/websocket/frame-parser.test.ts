import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DEFAULT_MAX_PAYLOAD, FrameParser, type Frame, type FrameResult } from './frame-parser.js';
import { encodeFrame, encodeFrameHeader } from './frame-writer.js';
import { Opcode } from './opcodes.js';
import type { WsProtocolError } from './protocol-error.js';

function framesOf(results: FrameResult[]): Frame[] {
  return results.map((r) => {
    assert.equal(r.kind, 'frame', r.kind === 'error' ? r.reason : '');
    return r as Frame;
  });
}

function errorOf(results: FrameResult[]): WsProtocolError {
  const last = results.at(-1);
  assert.ok(last !== undefined && last.kind === 'error', 'expected a protocol error');
  return last as WsProtocolError;
}

/** Feeds `bytes` in pieces of `size` and collects everything the parser yields. */
function feedInPieces(parser: FrameParser, bytes: Buffer, size: number): FrameResult[] {
  const out: FrameResult[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(...parser.feed(bytes.subarray(i, i + size)));
  return out;
}

test('the default payload limit is 64 MiB', () => {
  assert.equal(DEFAULT_MAX_PAYLOAD, 64 * 1024 * 1024);
  assert.equal(new FrameParser().maxPayload, DEFAULT_MAX_PAYLOAD);
});

for (const length of [0, 1, 125, 126, 127, 65535, 65536, 16 * 1024 * 1024]) {
  for (const masked of [false, true]) {
    test(`round trip: ${length}-byte ${masked ? 'masked' : 'unmasked'} binary frame`, () => {
      const payload = length >= 1024 * 1024 ? Buffer.alloc(length, 0xa5) : randomBytes(length);
      if (length >= 1024 * 1024) payload.writeUInt32BE(0xdeadbeef, length - 4);
      const bytes = encodeFrame({ opcode: Opcode.BINARY, payload, mask: masked });
      // Whole, and in 64 KiB reads as a socket would deliver it.
      for (const piece of [bytes.length, 65536]) {
        const [frame, ...rest] = framesOf(feedInPieces(new FrameParser(), bytes, piece));
        assert.equal(rest.length, 0);
        assert.ok(frame);
        assert.equal(frame.fin, true);
        assert.equal(frame.rsv, 0);
        assert.equal(frame.opcode, Opcode.BINARY);
        assert.equal(frame.masked, masked);
        assert.equal(frame.payload.length, length);
        assert.ok(frame.payload.equals(payload), 'payload differs');
      }
    });
  }
}

test('every split point of a small masked frame, and of two frames back to back', () => {
  const one = encodeFrame({ opcode: Opcode.TEXT, payload: 'héllo, split world', mask: true });
  const two = Buffer.concat([one, encodeFrame({ opcode: Opcode.PING, payload: 'p', mask: true })]);
  for (let split = 0; split <= two.length; split++) {
    const parser = new FrameParser({ expectMasked: true });
    const results = [...parser.feed(two.subarray(0, split)), ...parser.feed(two.subarray(split))];
    const frames = framesOf(results);
    assert.equal(frames.length, 2, `split at ${split}`);
    assert.equal(frames[0]!.payload.toString('utf8'), 'héllo, split world');
    assert.equal(frames[1]!.opcode, Opcode.PING);
    assert.equal(frames[1]!.payload.toString(), 'p');
    assert.equal(parser.bufferedBytes, 0);
  }
  // Byte by byte: nothing comes out until the last byte.
  const parser = new FrameParser();
  for (let i = 0; i < one.length - 1; i++) assert.deepEqual(parser.feed(one.subarray(i, i + 1)), []);
  assert.equal(framesOf(parser.feed(one.subarray(one.length - 1))).length, 1);
});

test('does not modify the caller buffer when unmasking', () => {
  const bytes = encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.from('abcdef'), mask: Buffer.from([1, 2, 3, 4]) });
  const copy = Buffer.from(bytes);
  const [frame] = framesOf(new FrameParser().feed(bytes));
  assert.equal(frame!.payload.toString(), 'abcdef');
  assert.deepEqual(bytes, copy);
});

test('reports fin, rsv bits and many frames from one chunk in order', () => {
  const bytes = Buffer.concat([
    encodeFrame({ fin: false, rsv: 0b100, opcode: Opcode.TEXT, payload: 'a' }),
    encodeFrame({ fin: false, opcode: Opcode.CONTINUATION, payload: 'b' }),
    encodeFrame({ opcode: Opcode.CONTINUATION, payload: 'c' }),
    ...Array.from({ length: 100 }, (_, i) => encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.from([i]) })),
  ]);
  const frames = framesOf(new FrameParser().feed(bytes));
  assert.equal(frames.length, 103);
  assert.deepEqual(frames.slice(0, 3).map((f) => [f.fin, f.rsv, f.opcode]), [[false, 4, 1], [false, 0, 0], [true, 0, 0]]);
  assert.deepEqual(frames.slice(3).map((f) => f.payload[0]), Array.from({ length: 100 }, (_, i) => i));
});

test('protocol errors come out once as values with close code 1002', () => {
  const cases: [string, Buffer][] = [
    ['reserved opcode 0x3', encodeFrame({ opcode: 0x3 })],
    ['reserved opcode 0xb', encodeFrame({ opcode: 0xb })],
    ['fragmented control frame', encodeFrame({ fin: false, opcode: Opcode.PING })],
    ['control frame payload over 125 bytes', encodeFrame({ opcode: Opcode.CLOSE, payload: Buffer.alloc(126) })],
    ['64-bit payload length with the top bit set', Buffer.from('827f8000000000000001', 'hex')],
  ];
  for (const [reason, bytes] of cases) {
    const parser = new FrameParser();
    const results = parser.feed(bytes);
    assert.equal(results.length, 1, reason);
    const error = errorOf(results);
    assert.equal(error.closeCode, 1002, reason);
    assert.equal(error.reason, reason);
    assert.equal(parser.error, error);
    // Failed for good: more input is ignored and the error is not repeated.
    assert.deepEqual(parser.feed(encodeFrame({ opcode: Opcode.TEXT, payload: 'x' })), []);
    assert.equal(parser.next(), null);
  }
});

test('errors are reported as soon as the header shows them, after good frames', () => {
  const good = encodeFrame({ opcode: Opcode.TEXT, payload: 'ok' });
  const results = new FrameParser().feed(Buffer.concat([good, Buffer.from([0x83])]));
  assert.equal(results.length, 1, 'the bad opcode needs its second header byte');
  const parser = new FrameParser();
  const all = parser.feed(Buffer.concat([good, Buffer.from([0x83, 0x00])]));
  assert.equal(framesOf(all.slice(0, 1))[0]!.payload.toString(), 'ok');
  assert.equal(errorOf(all).closeCode, 1002);
});

test('masking is enforced when the side is known', () => {
  const unmasked = encodeFrame({ opcode: Opcode.TEXT, payload: 'x' });
  const masked = encodeFrame({ opcode: Opcode.TEXT, payload: 'x', mask: true });
  assert.equal(errorOf(new FrameParser({ expectMasked: true }).feed(unmasked)).reason, 'unmasked frame from client');
  assert.equal(errorOf(new FrameParser({ expectMasked: false }).feed(masked)).reason, 'masked frame from server');
  assert.equal(framesOf(new FrameParser({ expectMasked: false }).feed(unmasked)).length, 1);
  assert.equal(framesOf(new FrameParser().feed(masked)).length, 1);
});

test('a frame over maxPayload is a 1009 error before its payload arrives', () => {
  const parser = new FrameParser({ maxPayload: 1000 });
  assert.equal(framesOf(parser.feed(encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(1000) }))).length, 1);
  const header = encodeFrameHeader({ fin: true, rsv: 0, opcode: 2, payloadLength: 1001, maskKey: null });
  const error = errorOf(parser.feed(header));
  assert.equal(error.closeCode, 1009);
  assert.equal(parser.bufferedBytes, 0);
  const huge = encodeFrameHeader({ fin: true, rsv: 0, opcode: 2, payloadLength: 2 ** 40, maskKey: Buffer.alloc(4) });
  assert.equal(errorOf(new FrameParser().feed(huge)).closeCode, 1009);
});
